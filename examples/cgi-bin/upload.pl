#!/usr/bin/perl
# An upload: reads exactly CONTENT_LENGTH bytes of stdin, reports their size and SHA-256.
use strict; use warnings; use Digest::SHA;
binmode STDIN;
my $length = $ENV{CONTENT_LENGTH} || 0;
my $sha = Digest::SHA->new(256);
my $total = 0;
while ($total < $length) {
    my $want = $length - $total; $want = 65536 if $want > 65536;
    my $got = read(STDIN, my $buffer, $want);
    last unless $got;
    $sha->add($buffer); $total += $got;
}
print "Content-Type: text/plain\r\n\r\n";
print "size=$total\nsha256=", $sha->hexdigest, "\n";
