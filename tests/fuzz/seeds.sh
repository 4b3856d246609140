#!/bin/sh
# seeds.sh: writes the seed corpus of each fuzz target into tests/fuzz/corpus/<name>/: small valid
# files and hostile ones (sizes that overflow or wrap, truncated data, lengths past the end).
# Inputs that fuzzing found are kept beside them and are not written by this script: those that
# crashed a reader before it was fixed (crash-<sha1>), and those that reached new code (named by
# their SHA-1; merged with `build-fuzz/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> DIR`).
# Run from the repository root: sh tests/fuzz/seeds.sh
set -e
C=tests/fuzz/corpus
mkdir -p $C/npy $C/safetensors $C/ckpt_json $C/idx $C/cifar $C/yaml

# ---- .npy: magic, version, little-endian header length, the header dict, data
# npy1 FILE DICT DATA-BYTES: a version 1 file (the header padded with spaces, ending in \n)
npy1() {
  h="$2"; n=$(( ${#h} + 1 )); pad=$(( (64 - (10 + n) % 64) % 64 )); n=$(( n + pad ))
  { printf '\223NUMPY\001\000'; printf "\\$(printf %03o $(( n % 256 )))\\$(printf %03o $(( n / 256 )))";
    printf '%s' "$h"; printf "%${pad}s" ''; printf '\n'; printf "$3"; } > $C/npy/$1
}
npy1 f4_2x3 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" \
  '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100\000\000\300\100'
npy1 f8_fortran_2x2 "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }" \
  '\000\000\000\000\000\000\360\077\000\000\000\000\000\000\000\100\000\000\000\000\000\000\010\100\000\000\000\000\000\000\020\100'
npy1 u1_scalar "{'descr': '|u1', 'fortran_order': False, 'shape': (), }" '\007'
npy1 i8_empty "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }" ''
npy1 b1_3 "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }" '\001\000\001'
npy1 i4_3d "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2, 1), }" '\001\000\000\000\002\000\000\000'
npy1 overflow_2p62x4x1 "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4, 1), }" '\000\000\000\000\000\000\000\000'
npy1 wrap_to_2 "{'descr': '<f4', 'fortran_order': False, 'shape': (3074457345618258603, 6), }" '\000\000\000\000\000\000\000\000'
npy1 wrap_to_0 "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296), }" ''
npy1 zero_times_huge "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }" ''
npy1 bytes_wrap "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }" ''
npy1 negative "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }" '\000\000\000\000'
npy1 nine_dims "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }" '\000'
npy1 erange "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }" ''
npy1 truncated "{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }" '\000\000\000\000\000\000\000\000'
npy1 no_paren "{'descr': '<f4', 'fortran_order': False, 'shape': (2, }" ''
printf '\223NUMPY\001\000\377\377{}' > $C/npy/header_past_eof
printf '\223NUMPY\002\000\377\377\377\377{}' > $C/npy/v2_header_absurd
printf "\223NUMPY\002\000\103\000\000\000{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }         \n\000\000\200\077" > $C/npy/v2_f4_1

# ---- safetensors: 8-byte little-endian header length, JSON, data
# st FILE JSON DATA-BYTES [DECLARED-LENGTH]: a file whose header length is the JSON's (or the given one)
le8() { v=$1; i=0; while [ $i -lt 8 ]; do printf "\\$(printf %03o $(( v % 256 )))"; v=$(( v / 256 )); i=$(( i + 1 )); done; }
st() {
  { le8 ${4:-${#2}}; printf '%s' "$2"; printf "$3"; } > $C/safetensors/$1
  { printf '%s' "$2"; printf '\000'; printf "$3"; } > $C/ckpt_json/$1
}
Z8='\000\000\000\000\000\000\000\000'
st valid '{"__metadata__":{"format":"pt","recipe":"x\u00e9\n"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[0],"data_offsets":[8,8]}}' "$Z8"
st valid_kinds '{"w":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"s":{"dtype":"F64","shape":[],"data_offsets":[12,20]},"j":{"dtype":"I32","shape":[1,1],"data_offsets":[20,24]}}' "$Z8$Z8$Z8"
st empty_first '{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\000\000\000\000'
st shape_vs_offsets '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' "$Z8"
st offsets_past_eof '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' "$Z8"
st offsets_reversed '{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}' "$Z8"
st overlap '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}' "$Z8"
st out_of_order '{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' "$Z8"
st hole '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' "$Z8"
st wrap_to_0 '{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}' ''
st wrap_bytes '{"a":{"dtype":"F32","shape":[1099511627776,4194304],"data_offsets":[0,0]}}' ''
st overflow_2p40 '{"a":{"dtype":"F64","shape":[1099511627776,1099511627776,4],"data_offsets":[0,8]}}' "$Z8"
st size_too_big '{"a":{"dtype":"U8","shape":[1099511627777],"data_offsets":[0,1]}}' '\000'
st nine_dims '{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}' '\000'
st offset_u64_max '{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615]}}' ''
st int_overflow '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,184467440737095516150]}}' ''
st duplicate '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}' '\000\000'
st bad_escape '{"a\u0zz0":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' '\000'
st nul_escape '{"a\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' '\000'
st deep '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}' '\000'
st unknown_keys '{"__metadata__":{},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":{"k":[1,2.5e3,true,null,"s"]}}}' '\000'
st meta_not_string '{"__metadata__":{"k":3}}' ''
st f16 '{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}' '\000\000\000\000'
st trailing '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x' '\000'
{ le8 4294967296; printf '{}'; } > $C/safetensors/header_past_eof
printf '\377\377\377\377\377\377\377\377{}' > $C/safetensors/header_absurd
printf '\001\000\000\000\000\000\000\000{' > $C/safetensors/header_one_byte
printf '\002\000' > $C/safetensors/no_length

# ---- IDX (fuzz_idx's input: mode, labels length (2 bytes), bytes cut off the gzip data, then the file)
# mode bits: 1 gzip the images, 2 a labels file at the end, 4 gzip the labels, 8 cut; high nibble: num_classes
idx() { { printf "$2"; printf "$3"; } > $C/idx/$1; }
IMG='\000\000\010\003\000\000\000\003\000\000\000\002\000\000\000\002\001\002\003\004\005\006\007\010\011\012\013\014'
LAB='\000\000\010\001\000\000\000\003\000\001\002'
idx plain '\000\000\000\000' "$IMG"
idx gzip '\001\000\000\000' "$IMG"
idx labels '\002\000\013\000' "$IMG$LAB"
idx labels_gzip '\247\000\013\000' "$IMG$LAB"
idx labels_over_classes '\042\000\013\000' "$IMG$LAB"
idx labels_count '\002\000\013\000' "$IMG"'\000\000\010\001\000\000\000\002\000\001\002'
idx gzip_cut '\011\000\000\012' "$IMG"
idx gzip_cut_trailer '\011\000\000\004' "$IMG"
idx truncated '\000\000\000\000' '\000\000\010\003\000\000\000\003\000\000\000\002\000\000\000\002\001\002\003'
idx trailing '\000\000\000\000' "$IMG"'\377\377'
idx wrap_2p64 '\000\000\000\000' '\000\000\010\003\000\100\000\000\000\040\000\000\000\040\000\000\001\002\003\004'
idx dims_max '\000\000\000\000' '\000\000\010\003\377\377\377\377\377\377\377\377\377\377\377\377\001'
idx huge_declared '\001\000\000\000' '\000\000\010\003\000\001\000\000\000\001\000\000\000\000\020\000\001\002'
idx zero_pixels '\000\000\000\000' '\000\000\010\003\377\377\377\377\000\000\000\000\000\000\000\034'
idx zero_images '\000\000\000\000' '\000\000\010\003\000\000\000\000\377\377\377\377\377\377\377\377'
idx bad_type '\000\000\000\000' '\000\000\015\003\000\000\000\001\000\000\000\001\000\000\000\001\000'
idx short_header '\000\000\000\000' '\000\000\010\003\000\000'
# a plain gzip file as the input itself (mode 0: written as is, inflated by the reader)
{ printf '\000\000\000\000'; printf "$IMG" | gzip -9 -n; } > $C/idx/raw_gzip
# a gzip bomb: 4 MiB of zeros (4 KiB compressed) behind a header that declares one 2 x 2 image,
# and behind one that declares 2^32 - 1 images of 1 x 1
{ printf '\000\000\000\000'; { printf '\000\000\010\003\000\000\000\001\000\000\000\002\000\000\000\002'; head -c 4194304 /dev/zero; } | gzip -9 -n; } > $C/idx/bomb_small_declared
{ printf '\000\000\000\000'; { printf '\000\000\010\003\377\377\377\377\000\000\000\001\000\000\000\001'; head -c 4194304 /dev/zero; } | gzip -9 -n; } > $C/idx/bomb_large_declared

# ---- CIFAR (fuzz_cifar's input: mode (1 CIFAR-100, 2 coarse, 4 gzip), then the file)
rec() { printf "$1"; head -c 3072 /dev/zero | tr '\000' "$2"; }
{ printf '\000'; rec '\003' '\001'; } > $C/cifar/c10_one
{ printf '\004'; rec '\003' '\001'; rec '\011' '\002'; } > $C/cifar/c10_two_gzip
{ printf '\000'; rec '\012' '\001'; } > $C/cifar/c10_bad_label
{ printf '\000'; rec '\003' '\001'; printf '\001\002'; } > $C/cifar/c10_partial_record
{ printf '\001'; rec '\023\143' '\005'; } > $C/cifar/c100_fine
{ printf '\003'; rec '\024\001' '\005'; } > $C/cifar/c100_coarse_bad
printf '\000' > $C/cifar/empty

# ---- YAML
cp recipes/sweeps/*.yaml $C/yaml/
printf 'a: &x [1, 2, {b: c}]\nd: *x\ne: !!str 3\nf: "q\\u00e9"\ng: |\n  block\n  text\nh: >-\n  folded\n' > $C/yaml/anchors
printf 'a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: [*d, *d, *d, *d]\n' > $C/yaml/laughs
printf '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n' > $C/yaml/deep
printf 'a: 1\n\tb: 2\n' > $C/yaml/tab
printf 'a: 1\na: 2\n' > $C/yaml/duplicate
printf 'a: &r [*r]\n' > $C/yaml/recursive
printf 'a: !!int 3\n' > $C/yaml/tag
printf -- '--- a\n--- b\n' > $C/yaml/two_docs
printf 'a: "\377\376"\n' > $C/yaml/bad_utf8
printf '? [a]\n: b\n' > $C/yaml/complex_key
printf 'a: *nope\n' > $C/yaml/unknown_alias

# ---- image (the first byte picks the decode target side) and image_list: the images are small
# JPEGs (RGB, grey, CMYK, EXIF orientation 6) and PNGs (RGB, palette, 16-bit grey, RGBA, grey with
# alpha) written once with TurboJPEG and libpng and committed as they are; the list seeds are
# "path label" lines, good and hostile (a path up and out of the root, an absolute path, a missing,
# negative or overflowing label, extra fields, blank lines and CRLF).
