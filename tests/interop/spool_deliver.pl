#!/usr/bin/perl
# Delivery agent for the private Exim instance (and any MTA that can pipe a
# delivery into a command): Exim runs it from a pipe transport.
#
#   spool_deliver.pl SPOOL SERVER [key=value ...] [-- RCPT ...]
#
# key=value arguments (all optional):
#   sender=ADDR        MAIL FROM (else taken from a stripped Return-Path header)
#   rcpt=ADDR          a recipient (repeatable; also any argument after "--")
#   group=ID           the server's id of the message: spool readers merge
#                      per-recipient deliveries of one message by it
#   group-from=NAME    the group is the word after " id " in the stripped
#                      header NAME (OpenSMTPD's Received: "... id 1a2b3c4d")
#   strip=NAME         remove the first header NAME (case-insensitive) from the
#                      leading block of headers the MTA prepended (repeatable);
#                      Return-Path / Envelope-To give sender / recipients
#   crlf=1             the MTA hands LF lines over: turn LF into CRLF
#   info.KEY=VALUE     copied into the JSON as KEY
# Environment INTEROP_INFO_KEY=VALUE is copied the same way (Exim passes
# tainted values there, as it refuses them in the command's arguments).
#
# Writes, atomically (temp file + rename, .json first, as the other spools):
#   <n>.raw.eml  the message exactly as the MTA handed it over
#   <n>.eml      without the stripped headers (and LF -> CRLF with crlf=1)
#   <n>.json     {"server", "mail_from", "rcpt_tos", "group", "size", ...}
# Exit code 75 (EX_TEMPFAIL) makes the MTA retry.
use strict;
use warnings;
use JSON::PP ();
use File::Temp ();

my ($spool, $server, @rest) = @ARGV;
defined $server or do { print STDERR "usage: spool_deliver.pl SPOOL SERVER [k=v ...] [-- RCPT ...]\n"; exit 64 };

my ($sender, $group, $group_from, $crlf) = (undef, undef, undef, 0);
my (@rcpts, @strip);
my %info;
while (@rest) {
    my $a = shift @rest;
    if ($a eq '--') { push @rcpts, @rest; last }
    elsif ($a =~ /^sender=(.*)\z/s) { $sender = $1 }
    elsif ($a =~ /^rcpt=(.*)\z/s) { push @rcpts, $1 }
    elsif ($a =~ /^group=(.*)\z/s) { $group = $1 }
    elsif ($a =~ /^group-from=(.*)\z/s) { $group_from = lc $1 }
    elsif ($a =~ /^strip=(.*)\z/s) { push @strip, lc $1 }
    elsif ($a =~ /^crlf=(.*)\z/s) { $crlf = $1 ? 1 : 0 }
    elsif ($a =~ /^info\.([A-Za-z0-9_]+)=(.*)\z/s) { $info{$1} = $2 }
}
for my $k (sort keys %ENV) {
    $info{lc $1} = $ENV{$k} if $k =~ /^INTEROP_INFO_([A-Z0-9_]+)\z/;
}

binmode STDIN;
my $raw = do { local $/; <STDIN> };
$raw = '' unless defined $raw;

# Strip the MTA's own leading headers (each at most once, only while the
# leading lines are such headers), remembering their values.
my $body = $raw;
my %stripped;
my %want = map { $_ => 1 } @strip;
while (%want) {
    last unless $body =~ /\A([A-Za-z0-9-]+):[ \t]*([^\n]*\n(?:[ \t][^\n]*\n)*)/;
    my ($name, $value, $whole) = (lc $1, $2, $&);
    last unless delete $want{$name};
    $value =~ s/\r?\n[ \t]*/ /g;
    $value =~ s/\s+\z//;
    $stripped{$name} = $value;
    $body = substr($body, length $whole);
}
if (!defined $sender && exists $stripped{'return-path'}) {
    ($sender = $stripped{'return-path'}) =~ s/^<(.*)>\z/$1/;
}
if (!@rcpts) {
    for my $h ('envelope-to', 'delivered-to') {
        next unless exists $stripped{$h};
        push @rcpts, grep { length } map { my $r = $_; $r =~ s/^\s+|\s+\z//g; $r =~ s/^<(.*)>\z/$1/; $r } split /,/, $stripped{$h};
        last;
    }
}
if (!defined $group && defined $group_from && exists $stripped{$group_from}) {
    $group = $1 if $stripped{$group_from} =~ /\sid\s+(\S+)/;
}
$body =~ s/\r?\n/\r\n/g if $crlf;

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
    # Allocate <n> under an exclusive lock so concurrent deliveries never collide.
    open my $lock, '>>', "$spool/.lock" or die "lock: $!";
    flock $lock, 2 or die "flock: $!";
    my $n = 0;
    opendir my $dh, $spool or die "opendir: $!";
    for (readdir $dh) { $n = $1 if /^(\d+)\.json\z/ && $1 > $n }
    closedir $dh;
    $n++;
    my $meta = {
        %info,
        id        => $n + 0,
        server    => $server,
        mail_from => $sender // '',
        rcpt_tos  => \@rcpts,
        size      => length($body),
        stripped_headers => \%stripped,
        note      => '<n>.eml = <n>.raw.eml without the MTA\'s own leading headers' . ($crlf ? ', LF -> CRLF' : ''),
    };
    $meta->{group} = $group if defined $group;
    atomic_write("$n.json", JSON::PP->new->canonical->pretty->encode($meta));
    atomic_write("$n.raw.eml", $raw);
    atomic_write("$n.eml", $body);
    close $lock;
    1;
};
if (!$ok) {
    print STDERR "spool_deliver.pl: $@";
    exit 75;
}
exit 0;
