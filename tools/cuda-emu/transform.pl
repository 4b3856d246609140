#!/usr/bin/perl
# transform.pl IN.cu OUT.cpp: CUDA source to host C++ for the emulator: kernel launches
# name<<<grid, block, shm, stream>>>(args) become emu_launch("name", grid, block, shm, [&] { name(args); }),
# __shared__ arrays become statics (blocks run one after another), extern __shared__ the dynamic buffer.
use strict; use warnings;
local $/; open(my $in, '<', $ARGV[0]) or die "$ARGV[0]: $!"; my $s = <$in>; close $in;
$s =~ s/extern __shared__ (\w+) (\w+)\[\];/$1 *$2 = ($1 *)emu_dynsmem;/g;
$s =~ s/__shared__ /static /g;
my $paren = qr/(\((?:[^()]++|(?-1))*+\))/;
$s =~ s{(\w+(?:<[^<>()]*>)?)<<<(.*?)>>>$paren}{
  my ($name, $cfg, $args) = ($1, $2, $3);
  my @p; my ($d, $cur) = (0, '');
  for my $c (split //, $cfg) {
    $d++ if $c =~ /[(\[]/; $d-- if $c =~ /[)\]]/;
    if ($c eq ',' && $d == 0) { push @p, $cur; $cur = ''; } else { $cur .= $c; }
  }
  push @p, $cur; push @p, '0' while @p < 4;
  "emu_launch(\"$name\", ($p[0]), ($p[1]), (size_t)($p[2]), [&] { $name$args; })"
}gse;
open(my $out, '>', $ARGV[1]) or die "$ARGV[1]: $!"; print $out $s; close $out;
