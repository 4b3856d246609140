/* test_yaml.c: the YAML reader (core/yaml.c): a sweep file's tree with lines and columns, flow and
 * block styles, quoted and plain scalars, aliases sharing their anchor's node, and every error
 * with its exact NAME:LINE:COLUMN (tabs, duplicate keys, unclosed flow, bad indentation, a second
 * document, non-scalar keys, aliases, tags, nesting and size limits, a missing file). */
#include "testutil.h"

static vr_yaml *parse(const char *text) {
  vr_yaml *y = NULL;
  OK(vr_yaml_parse(text, strlen(text), "t.yaml", &y));
  ck_assert_ptr_nonnull(y);
  return y;
}

/* parsing text fails with VR_E_FORMAT, a message containing needle, and no document */
static void bad(const char *text, const char *needle) {
  vr_yaml *y = (vr_yaml *)1;
  FAILS(vr_yaml_parse(text, strlen(text), "t.yaml", &y), VR_E_FORMAT, needle);
  ck_assert_ptr_null(y);
}

/* the value of key in map node m, or -1 */
static int get(const vr_yaml *y, int m, const char *key) {
  for (int i = 0; i < vr_yaml_size(y, m); i++)
    if (!strcmp(vr_yaml_text(y, vr_yaml_key(y, m, i)), key)) return vr_yaml_item(y, m, i);
  return -1;
}

static void at(const vr_yaml *y, int node, int line, int col) {
  ck_assert_msg(vr_yaml_line(y, node) == line && vr_yaml_column(y, node) == col, "node %d at %d:%d, expected %d:%d",
                node, vr_yaml_line(y, node), vr_yaml_column(y, node), line, col);
}

static void scalar(const vr_yaml *y, int node, const char *text, int plain) {
  ck_assert_int_eq(vr_yaml_kind(y, node), VR_YAML_SCALAR);
  ck_assert_str_eq(vr_yaml_text(y, node), text);
  ck_assert_uint_eq(vr_yaml_length(y, node), strlen(text));
  ck_assert_int_eq(vr_yaml_plain(y, node), plain);
}

static const char *sweep =
    "recipe: ../fmnist_visreg.lua          # relative to this file\n"
    "name: lambda-slices\n"
    "set: { epochs: 2 }\n"
    "grid:\n"
    "  loss.lambda: [0.4, 0.6, 0.8]\n"
    "  loss.slices: [256, 1024]\n"
    "random:\n"
    "  n: 8\n"
    "  seed: 0\n"
    "  params:\n"
    "    optim.lr: { loguniform: [1.0e-4, 1.0e-2] }\n"
    "seeds:\n"
    "  - 0\n"
    "  - 1\n";

START_TEST(tree) {
  vr_yaml *y = parse(sweep);
  int r = vr_yaml_root(y);
  ck_assert_int_eq(r, 0);
  ck_assert_int_eq(vr_yaml_kind(y, r), VR_YAML_MAP);
  at(y, r, 1, 1);
  ck_assert_int_eq(vr_yaml_size(y, r), 6);
  const char *keys[] = {"recipe", "name", "set", "grid", "random", "seeds"};
  const int lines[] = {1, 2, 3, 4, 7, 12};
  for (int i = 0; i < 6; i++) {
    scalar(y, vr_yaml_key(y, r, i), keys[i], 1);
    at(y, vr_yaml_key(y, r, i), lines[i], 1);
  }
  int recipe = get(y, r, "recipe");
  scalar(y, recipe, "../fmnist_visreg.lua", 1);
  at(y, recipe, 1, 9);
  /* flow map */
  int set = get(y, r, "set");
  ck_assert_int_eq(vr_yaml_kind(y, set), VR_YAML_MAP);
  at(y, set, 3, 6);
  scalar(y, vr_yaml_key(y, set, 0), "epochs", 1);
  at(y, vr_yaml_key(y, set, 0), 3, 8);
  scalar(y, get(y, set, "epochs"), "2", 1);
  at(y, get(y, set, "epochs"), 3, 16);
  /* block map of flow sequences */
  int grid = get(y, r, "grid");
  at(y, grid, 5, 3);
  int lam = get(y, grid, "loss.lambda");
  ck_assert_int_eq(vr_yaml_kind(y, lam), VR_YAML_SEQ);
  ck_assert_int_eq(vr_yaml_size(y, lam), 3);
  at(y, lam, 5, 16);
  scalar(y, vr_yaml_item(y, lam, 1), "0.6", 1);
  at(y, vr_yaml_item(y, lam, 1), 5, 22);
  int lr = get(y, get(y, get(y, r, "random"), "params"), "optim.lr");
  int lu = get(y, lr, "loguniform");
  scalar(y, vr_yaml_item(y, lu, 0), "1.0e-4", 1);
  at(y, vr_yaml_item(y, lu, 1), 11, 38);
  /* block sequence */
  int seeds = get(y, r, "seeds");
  ck_assert_int_eq(vr_yaml_kind(y, seeds), VR_YAML_SEQ);
  at(y, seeds, 13, 3);
  ck_assert_int_eq(vr_yaml_size(y, seeds), 2);
  scalar(y, vr_yaml_item(y, seeds, 1), "1", 1);
  at(y, vr_yaml_item(y, seeds, 1), 14, 5);
  /* nodes are numbered in file order */
  ck_assert_int_eq(vr_yaml_count(y), 38);
  ck_assert_int_eq(vr_yaml_key(y, r, 0), 1);
  ck_assert_int_eq(recipe, 2);
  /* out-of-range questions get neutral answers */
  ck_assert_int_eq(vr_yaml_kind(y, -1), 0);
  ck_assert_int_eq(vr_yaml_kind(y, 38), 0);
  ck_assert_ptr_null(vr_yaml_text(y, r));
  ck_assert_ptr_null(vr_yaml_text(y, 1000));
  ck_assert_int_eq(vr_yaml_item(y, r, 6), -1);
  ck_assert_int_eq(vr_yaml_item(y, r, -1), -1);
  ck_assert_int_eq(vr_yaml_key(y, seeds, 0), -1);
  ck_assert_int_eq(vr_yaml_item(y, recipe, 0), -1);
  ck_assert_int_eq(vr_yaml_size(y, recipe), 0);
  ck_assert_int_eq(vr_yaml_line(y, -5), 0);
  ck_assert_int_eq(vr_yaml_column(y, 99), 0);
  ck_assert_int_eq(vr_yaml_root(NULL), -1);
  ck_assert_int_eq(vr_yaml_count(NULL), 0);
  ck_assert_int_eq(vr_yaml_kind(NULL, 0), 0);
  vr_yaml_free(y);
  vr_yaml_free(NULL);
}
END_TEST

START_TEST(styles) {
  vr_yaml *y = parse("plain: a b\n"
                     "single: 'it''s'\n"
                     "double: \"tab\\there\"\n"
                     "nul: \"a\\0b\"\n"
                     "literal: |\n"
                     "  one\n"
                     "  two\n"
                     "folded: >\n"
                     "  one\n"
                     "  two\n"
                     "empty:\n"
                     "quoted_empty: ''\n"
                     "str: !!str 12\n"
                     "bang: ! 12\n"
                     "seq: !!seq [a]\n"
                     "\"quoted key\": 1\n"
                     "utf8: héllo wörld\n"
                     "after: ü\n"
                     "nested: [a, [b, {c: d}], {}]\n");
  int r = vr_yaml_root(y);
  scalar(y, get(y, r, "plain"), "a b", 1);
  scalar(y, get(y, r, "single"), "it's", 0);
  scalar(y, get(y, r, "double"), "tab\there", 0);
  int nul = get(y, r, "nul");
  ck_assert_uint_eq(vr_yaml_length(y, nul), 3);
  ck_assert_int_eq(memcmp(vr_yaml_text(y, nul), "a\0b", 4), 0);
  scalar(y, get(y, r, "literal"), "one\ntwo\n", 0);
  scalar(y, get(y, r, "folded"), "one two\n", 0);
  scalar(y, get(y, r, "empty"), "", 1);
  at(y, get(y, r, "empty"), 11, 7);
  scalar(y, get(y, r, "quoted_empty"), "", 0);
  scalar(y, get(y, r, "str"), "12", 0);
  scalar(y, get(y, r, "bang"), "12", 0);
  ck_assert_int_eq(vr_yaml_kind(y, get(y, r, "seq")), VR_YAML_SEQ);
  ck_assert_int_eq(vr_yaml_plain(y, vr_yaml_key(y, r, 15)), 0);
  scalar(y, get(y, r, "quoted key"), "1", 1);
  scalar(y, get(y, r, "utf8"), "héllo wörld", 1);
  at(y, get(y, r, "after"), 18, 8); /* columns count characters, not bytes */
  int nested = get(y, r, "nested");
  ck_assert_int_eq(vr_yaml_size(y, nested), 3);
  int inner = vr_yaml_item(y, nested, 1);
  ck_assert_int_eq(vr_yaml_kind(y, inner), VR_YAML_SEQ);
  scalar(y, get(y, vr_yaml_item(y, inner, 1), "c"), "d", 1);
  at(y, vr_yaml_item(y, inner, 1), 19, 17);
  ck_assert_int_eq(vr_yaml_kind(y, vr_yaml_item(y, nested, 2)), VR_YAML_MAP);
  ck_assert_int_eq(vr_yaml_size(y, vr_yaml_item(y, nested, 2)), 0);
  vr_yaml_free(y);

  /* a scalar document, CRLF line ends, a BOM */
  y = parse("--- hello\n");
  scalar(y, vr_yaml_root(y), "hello", 1);
  vr_yaml_free(y);
  y = parse("a: 1\r\nb:\r\n  - x\r\n");
  at(y, vr_yaml_item(y, get(y, 0, "b"), 0), 3, 5);
  vr_yaml_free(y);
  y = parse("\xef\xbb\xbf" "k: v\n");
  scalar(y, get(y, 0, "k"), "v", 1);
  vr_yaml_free(y);
  /* keys equal in text are one key whatever their style, but the same key in two maps is fine */
  bad("1: a\n'1': b\n", "t.yaml:2:1: duplicate key '1' (first at line 1)");
  y = parse("a: {x: 1}\nb: {x: 2}\nx: 3\n");
  vr_yaml_free(y);
}
END_TEST

START_TEST(aliases) {
  vr_yaml *y = parse("base: &b {lr: 0.1, wd: 0}\n"
                     "one: *b\n"
                     "two: [*b, &s seven, *s]\n"
                     "re: &s eight\n"
                     "again: *s\n"
                     "? &k key\n"
                     ": *k\n");
  int r = vr_yaml_root(y), base = get(y, r, "base");
  ck_assert_int_eq(get(y, r, "one"), base); /* the same node, not a copy */
  int two = get(y, r, "two");
  ck_assert_int_eq(vr_yaml_item(y, two, 0), base);
  ck_assert_int_eq(vr_yaml_item(y, two, 2), vr_yaml_item(y, two, 1));
  scalar(y, vr_yaml_item(y, two, 2), "seven", 1);
  scalar(y, get(y, r, "again"), "eight", 1); /* a later anchor of a name replaces the earlier */
  scalar(y, get(y, r, "key"), "key", 1);
  at(y, get(y, r, "one"), 1, 7); /* an alias is its anchor's node, at the anchor's position */
  ck_assert_int_eq(vr_yaml_count(y), 15);
  vr_yaml_free(y);

  /* an alias may be a key when it names a scalar */
  y = parse("k: &n name\n*n : 2\n");
  ck_assert_int_eq(vr_yaml_size(y, 0), 2);
  vr_yaml_free(y);
  bad("k: &n name\nname: 1\n*n : 2\n", "t.yaml:3:1: duplicate key 'name' (first at line 2)");

  /* a billion laughs stays small: nine levels of ten aliases is 80 references, not 10^9 nodes */
  char doc[4096] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (int l = 1; l < 9; l++) {
    char line[128];
    snprintf(line, sizeof line, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", 'a' + l, 'a' + l,
             'a' + l - 1, 'a' + l - 1, 'a' + l - 1, 'a' + l - 1, 'a' + l - 1, 'a' + l - 1, 'a' + l - 1, 'a' + l - 1,
             'a' + l - 1, 'a' + l - 1);
    strcat(doc, line);
  }
  y = parse(doc);
  ck_assert_int_eq(vr_yaml_count(y), 1 + 2 * 9 + 10); /* the root, nine keys and lists, ten x */
  vr_yaml_free(y);
}
END_TEST

START_TEST(empty) {
  vr_yaml *y = NULL;
  OK(vr_yaml_parse("", 0, "t.yaml", &y));
  ck_assert_int_eq(vr_yaml_root(y), -1);
  ck_assert_int_eq(vr_yaml_count(y), 0);
  vr_yaml_free(y);
  OK(vr_yaml_parse(NULL, 0, NULL, &y)); /* no text at all is an empty document too */
  ck_assert_int_eq(vr_yaml_root(y), -1);
  vr_yaml_free(y);
  y = parse("# only a comment\n\n   \n");
  ck_assert_int_eq(vr_yaml_root(y), -1);
  vr_yaml_free(y);
  y = parse("---\n...\n"); /* an explicit document holding nothing: one empty plain scalar (null) */
  ck_assert_int_eq(vr_yaml_root(y), 0);
  scalar(y, 0, "", 1);
  vr_yaml_free(y);
  /* arguments */
  FAILS(vr_yaml_parse("a", 1, "t.yaml", NULL), VR_E_ARG, "out");
  FAILS(vr_yaml_parse(NULL, 3, "t.yaml", &y), VR_E_ARG, "text");
  ck_assert_ptr_null(y);
  FAILS(vr_yaml_load(NULL, &y), VR_E_ARG, "path");
  FAILS(vr_yaml_load("x.yaml", NULL), VR_E_ARG, "out");
  /* without a name, messages say <string> */
  FAILS(vr_yaml_parse("a: 1\na: 2\n", 10, NULL, &y), VR_E_FORMAT, "<string>:2:1: duplicate key 'a'");
}
END_TEST

START_TEST(errors) {
  /* tabs */
  bad("a:\n\tb: 1\n", "t.yaml:2:1: a tab character: YAML indents with spaces");
  bad("a:\n  b: 1\n\tc: 2\n", "t.yaml:3:1: a tab character: YAML indents with spaces");
  bad("- 1\n\t- 2\n", "t.yaml:2:1: a tab character: YAML indents with spaces");
  /* duplicate keys: block, flow, nested, after other keys */
  bad("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first at line 1)");
  bad("set: {x: 1, y: 2, x: 3}\n", "t.yaml:1:19: duplicate key 'x' (first at line 1)");
  bad("grid:\n  lr: [1]\n  wd: [2]\n  lr: [3]\n", "t.yaml:4:3: duplicate key 'lr' (first at line 2)");
  /* unclosed flow, with and without a final line break */
  bad("x: [1, 2\n", "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)");
  bad("[1, 2", "t.yaml:1:6: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 1)");
  bad("{a: 1", "t.yaml:1:6: did not find expected ',' or '}' (while parsing a flow mapping at line 1, column 1)");
  /* bad indentation */
  bad("a:\n  b: 1\n c: 2\n", "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1, column 1)");
  bad("a: 1\n  b: 2\n", "t.yaml:2:4: mapping values are not allowed in this context");
  bad("a:\n    b: 1\n  c: 2\n", "t.yaml:3:3: did not find expected key (while parsing a block mapping at line 1, column 1)");
  /* two documents */
  bad("a: 1\n---\nb: 2\n", "t.yaml:2:1: a second document");
  bad("--- 1\n--- 2\n", "t.yaml:2:1: a second document");
  /* keys that are not scalars */
  bad("? [1, 2]\n: x\n", "t.yaml:1:3: a map key must be a scalar, got a sequence");
  bad("{[1]: 2}\n", "t.yaml:1:2: a map key must be a scalar, got a sequence");
  bad("? {a: 1}\n: x\n", "t.yaml:1:3: a map key must be a scalar, got a map");
  bad("m: &m {a: 1}\n*m : 2\n", "t.yaml:2:1: a map key must be a scalar, got a map");
  /* aliases */
  bad("a: *nope\n", "t.yaml:1:4: unknown alias '*nope' (no anchor '&nope' before it)");
  bad("a: *later\nb: &later 1\n", "t.yaml:1:4: unknown alias '*later'");
  bad("a: &r [1, *r]\n", "t.yaml:1:11: the alias '*r' is inside the node it names");
  bad("a: &r {b: {c: *r}}\n", "t.yaml:1:15: the alias '*r' is inside the node it names");
  /* tags */
  bad("a: !!int 3\n", "t.yaml:1:4: the tag '!!int' is not supported on a scalar");
  bad("a: !custom {b: 1}\n", "t.yaml:1:4: the tag '!custom' is not supported on a map");
  bad("a: !!map [1]\n", "t.yaml:1:4: the tag '!!map' is not supported on a sequence");
  /* text libyaml refuses */
  bad("a: \xff\n", "t.yaml:1:4: invalid leading UTF-8 octet (0xff)");
  bad("a: b\n  c\nd: [\n", "t.yaml:4:1: did not find expected node content");
  bad("a: 'unclosed\n", "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1, column 4)");
  bad("a: @x\n", "t.yaml:1:4: found character that cannot start any token");
}
END_TEST

/* head, then n copies of s, then tail (malloc'd) */
static char *repeat(const char *head, const char *s, int n, const char *tail) {
  size_t h = strlen(head), k = strlen(s), t = strlen(tail);
  char *b = malloc(h + k * (size_t)n + t + 1);
  memcpy(b, head, h);
  for (int i = 0; i < n; i++) memcpy(b + h + k * (size_t)i, s, k);
  memcpy(b + h + k * (size_t)n, tail, t + 1);
  return b;
}

START_TEST(limits) {
  /* 64 nested sequences are fine, the 65th is refused where it starts */
  char nest[200];
  for (int i = 0; i < 64; i++) nest[i] = '[', nest[64 + i] = ']';
  nest[128] = 0;
  vr_yaml *y = parse(nest);
  ck_assert_int_eq(vr_yaml_count(y), 64);
  vr_yaml_free(y);
  for (int i = 0; i < 65; i++) nest[i] = '[';
  nest[65] = 0;
  bad(nest, "t.yaml:1:65: nested deeper than 64 levels");
  /* block nesting counts too */
  char block[8192] = "";
  for (int d = 0; d < 70; d++) {
    char line[160];
    snprintf(line, sizeof line, "%*sk%d:\n", 2 * d, "", d);
    strcat(block, line);
  }
  bad(block, "t.yaml:65:129: nested deeper than 64 levels");
  /* a hostile nesting depth is refused without exhausting anything */
  char *huge = repeat("", "[", 200000, "");
  bad(huge, "t.yaml:1:65: nested deeper than 64 levels");
  free(huge);
  /* at most 1,000,000 nodes and aliases: a sequence and 999,999 scalars are fine, one more is not */
  char *many = repeat("[0", ",0", 999998, "]");
  y = parse(many);
  ck_assert_int_eq(vr_yaml_count(y), 1000000);
  ck_assert_int_eq(vr_yaml_size(y, 0), 999999);
  vr_yaml_free(y);
  free(many);
  many = repeat("[0", ",0", 999999, "]");
  bad(many, "t.yaml:1:2000000: more than 1000000 nodes and aliases");
  free(many);
  /* aliases count too (they cost a child entry each) */
  many = repeat("[&a 0", ", *a", 999998, "]");
  y = parse(many);
  ck_assert_int_eq(vr_yaml_count(y), 2);
  ck_assert_int_eq(vr_yaml_size(y, 0), 999999);
  vr_yaml_free(y);
  free(many);
  many = repeat("[&a 0", ", *a", 999999, "]");
  bad(many, "t.yaml:1:4000000: more than 1000000 nodes and aliases");
  free(many);
}
END_TEST

START_TEST(files) {
  const char *path = tu_in_dir("grid.yaml");
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs(sweep, f);
  fclose(f);
  vr_yaml *y = NULL;
  OK(vr_yaml_load(path, &y));
  ck_assert_int_eq(vr_yaml_size(y, vr_yaml_root(y)), 6);
  vr_yaml_free(y);
  /* errors name the file */
  const char *dup = tu_in_dir("dup.yaml");
  f = fopen(dup, "wb");
  fputs("seeds: [0]\nname: a\nseeds: [1]\n", f);
  fclose(f);
  char want[600];
  snprintf(want, sizeof want, "%s:3:1: duplicate key 'seeds' (first at line 1)", dup);
  y = (vr_yaml *)1;
  FAILS(vr_yaml_load(dup, &y), VR_E_FORMAT, want);
  ck_assert_ptr_null(y);
  /* a missing file and a folder */
  const char *missing = tu_in_dir("missing.yaml");
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
  FAILS(vr_yaml_load(missing, &y), VR_E_IO, want);
  ck_assert_ptr_null(y);
  FAILS(vr_yaml_load(tu_dir, &y), VR_E_IO, "cannot read");
  /* an empty file is an empty document */
  const char *empty = tu_in_dir("empty.yaml");
  fclose(fopen(empty, "wb"));
  OK(vr_yaml_load(empty, &y));
  ck_assert_int_eq(vr_yaml_root(y), -1);
  vr_yaml_free(y);
}
END_TEST

static Suite *yaml_suite(void) {
  Suite *s = suite_create("yaml");
  TCase *tc = tcase_create("yaml");
  tcase_add_checked_fixture(tc, tu_tmpdir_setup, tu_tmpdir_teardown);
  tcase_add_test(tc, tree);
  tcase_add_test(tc, styles);
  tcase_add_test(tc, aliases);
  tcase_add_test(tc, empty);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, limits);
  tcase_add_test(tc, files);
  suite_add_tcase(s, tc);
  return s;
}

VR_TEST_MAIN(yaml_suite)
