#!/usr/bin/perl
# Postfix pipe(8) delivery agent for the private interop instance.
#
# master.cf runs it as user "nobody" with
#   argv=/STATE/postfix/deliver.pl SPOOL_DIR ${queue_id} sender=${sender}
#        helo=${client_helo} proto=${client_protocol} sasl_method=${sasl_method}
#        sasl_username=${sasl_username} rcpt=${recipient} orcpt=${original_recipient}
# (one "rcpt=" / "orcpt=" argument per recipient; the null sender expands to
# "sender=").  ${client_protocol} is only SMTP/ESMTP; the full protocol
# (ESMTPSA, UTF8SMTPSA, ...) is taken from Postfix's Received: header.
#
# For each delivery it writes, atomically (temp file + rename, .json first):
#   <n>.postfix.eml  the message exactly as pipe(8) hands it over: Postfix's own
#                    "Received:" header prepended, LF line endings
#   <n>.eml          the same with Postfix's Received: header (the first
#                    header, with its continuation lines) removed and LF turned
#                    back into CRLF: for a client that sent CRLF-terminated
#                    lines this equals the bytes the client sent
#   <n>.json         {"queue_id", "mail_from", "rcpt_tos", "size", ...}
# Exit codes follow sysexits(3): 75 (EX_TEMPFAIL) makes Postfix retry.
use strict;
use warnings;
use JSON::PP ();
use File::Temp ();

my ($spool, $queue_id, @rest) = @ARGV;
defined $spool && defined $queue_id or do { print STDERR "usage: deliver.pl SPOOL QUEUE_ID sender=S rcpt=R...\n"; exit 64 };

my $sender;
my (@rcpts, @orcpts);
my %info;
for my $a (@rest) {
    if ($a =~ /^sender=(.*)\z/s) { $sender = $1 }
    elsif ($a =~ /^rcpt=(.*)\z/s) { push @rcpts, $1 }
    elsif ($a =~ /^orcpt=(.*)\z/s) { push @orcpts, $1 }
    elsif ($a =~ /^(helo|proto|sasl_method|sasl_username)=(.*)\z/s) { $info{$1} = $2 }
}

binmode STDIN;
my $raw = do { local $/; <STDIN> };
$raw = '' unless defined $raw;

# Strip the first header when it is the Received: header Postfix's smtpd added.
# Its "with" clause tells the protocol: ESMTP, ESMTPS (TLS), ESMTPSA (TLS+AUTH),
# UTF8SMTP* when the client sent MAIL ... SMTPUTF8.
my $stripped = $raw;
my $with_proto;
if ($stripped =~ /\AReceived: [^\n]*\n(?:[ \t][^\n]*\n)*/) {
    my $hdr = $&;
    if ($hdr =~ /\(Postfix\)/) {
        $stripped = substr($stripped, length $hdr);
        $with_proto = $1 if $hdr =~ /\bwith\s+(\S+)/;
    }
}
(my $crlf = $stripped) =~ s/\n/\r\n/g;

sub atomic_write {
    my ($name, $data) = @_;
    my $tmp = File::Temp->new(DIR => $spool, TEMPLATE => '.tmp-XXXXXXXX', UNLINK => 0);
    binmode $tmp;
    print {$tmp} $data or die "write: $!";
    $tmp->flush;
    close $tmp or die "close: $!";
    chmod 0644, $tmp->filename;
    rename $tmp->filename, "$spool/$name" or die "rename: $!";
}

my $ok = eval {
    # Allocate <n> with an exclusive lock so concurrent deliveries never collide.
    open my $lock, '>>', "$spool/.lock" or die "lock: $!";
    flock $lock, 2 or die "flock: $!";
    my $n = 0;
    opendir my $dh, $spool or die "opendir: $!";
    for (readdir $dh) { $n = $1 if /^(\d+)\.json\z/ && $1 > $n }
    closedir $dh;
    $n++;
    my $meta = {
        id        => $n + 0,
        server    => 'postfix',
        queue_id  => $queue_id,
        mail_from => $sender,
        rcpt_tos  => \@rcpts,
        original_rcpt_tos => \@orcpts,
        helo      => $info{helo},
        client_protocol => $info{proto},
        protocol  => $with_proto,
        smtp_utf8 => (($with_proto // '') =~ /^UTF8/ ? JSON::PP::true : JSON::PP::false),
        sasl_method   => $info{sasl_method},
        sasl_username => $info{sasl_username},
        size      => length($crlf),
        note      => '<n>.eml = <n>.postfix.eml without the Postfix Received: header, LF -> CRLF',
    };
    atomic_write("$n.json", JSON::PP->new->canonical->pretty->encode($meta));
    atomic_write("$n.postfix.eml", $raw);
    atomic_write("$n.eml", $crlf);
    close $lock;
    1;
};
if (!$ok) {
    print STDERR "deliver.pl: $@";
    exit 75;
}
exit 0;
