/* test_pickle_vm.c — the restricted pickle machine on handcrafted byte strings: every opcode
 * class, memo and DUP references, the limits, and each refusal with its message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/pickle.h"

static int bad = 0;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                                             printf(__VA_ARGS__); printf("\n"); bad++; } } while (0)

/* A persistent-id resolver over one fake buffer: every storage gets 4096 bytes. */
static uint8_t fake[4096];
static int fake_storage(void *ctx, sdc_pickle_storage *st, sdc_err *e) {
    (void)ctx;
    if (!strcmp(st->key, "missing")) return sdc_errf(e, "storage '%s' has no record", st->key);
    st->data = fake;
    st->nbytes = sizeof fake;
    st->resolved = 1;
    return 0;
}

static sdc_pickle_cfg cfg_default(void) {
    sdc_pickle_cfg c = {0};
    c.where = "t.pkl";
    c.on_storage = fake_storage;
    return c;
}

/* Runs bytes in a fresh context; *pp keeps it alive (caller frees). Returns the rc. */
static int run(const char *b, size_t n, const sdc_pickle_cfg *cfg, sdc_pval **out,
               sdc_pickle **pp, sdc_err *e) {
    *pp = sdc_pickle_new();
    size_t end = 0;
    *out = NULL;
    e->msg[0] = 0;
    int rc = sdc_pickle_run(*pp, (const uint8_t *)b, n, cfg, out, &end, e);
    if (rc == 0 && end != n) return -2;   /* every test pickle ends at its STOP */
    return rc;
}

#define P(s) s, sizeof(s) - 1

/* Expects success; returns the value (context in *pp). */
static sdc_pval *ok(int line, const char *b, size_t n, sdc_pickle **pp) {
    sdc_pickle_cfg c = cfg_default();
    sdc_err e;
    sdc_pval *v;
    int rc = run(b, n, &c, &v, pp, &e);
    if (rc) { printf("FAIL line %d: rc %d: %s\n", line, rc, e.msg); bad++; return NULL; }
    return v;
}
#define OK(s, pp) ok(__LINE__, P(s), pp)

/* Expects a refusal whose message contains want. */
static void refuse(int line, const char *b, size_t n, const sdc_pickle_cfg *cfg, const char *want) {
    sdc_pickle_cfg c = cfg ? *cfg : cfg_default();
    sdc_err e;
    sdc_pval *v;
    sdc_pickle *p;
    int rc = run(b, n, &c, &v, &p, &e);
    if (rc != -1 || !strstr(e.msg, want)) {
        printf("FAIL line %d: rc %d, message '%s' (want '%s')\n", line, rc, e.msg, want);
        bad++;
    } else {
        printf("  refused: %s\n", e.msg);
    }
    sdc_pickle_free(p);
}
#define REFUSE(s, cfg, want) refuse(__LINE__, P(s), cfg, want)

static int is_str(const sdc_pval *v, const char *s) {
    return v && v->kind == SDC_PV_STR && v->u.str.n == strlen(s) && !memcmp(v->u.str.s, s, v->u.str.n);
}
static int is_int(const sdc_pval *v, int64_t i) { return v && v->kind == SDC_PV_INT && v->u.i == i; }

static void test_scalars(void) {
    sdc_pickle *p;
    /* (BININT1 7, BININT2 0x1234, BININT -2, LONG1 -1 (1 byte), LONG1 2^40 (6 bytes), LONG4 5,
     *  BINFLOAT 1.5, None, True, False) as a LIST */
    sdc_pval *v = OK("\x80\x02(K\x07M\x34\x12J\xfe\xff\xff\xff\x8a\x01\xff"
                     "\x8a\x06\x00\x00\x00\x00\x00\x01\x8b\x01\x00\x00\x00\x05"
                     "G\x3f\xf8\x00\x00\x00\x00\x00\x00N\x88\x89l.", &p);
    CHECK(v && v->kind == SDC_PV_LIST && v->u.seq.n == 10, "scalar list");
    if (v && v->u.seq.n == 10) {
        sdc_pval **a = v->u.seq.v;
        CHECK(is_int(a[0], 7) && is_int(a[1], 0x1234) && is_int(a[2], -2) && is_int(a[3], -1),
              "small ints");
        CHECK(is_int(a[4], 1ll << 40) && is_int(a[5], 5), "LONG1/LONG4");
        CHECK(a[6]->kind == SDC_PV_FLOAT && a[6]->u.f == 1.5, "BINFLOAT");
        CHECK(a[7]->kind == SDC_PV_NONE && a[8]->kind == SDC_PV_BOOL && a[8]->u.i == 1 &&
              a[9]->kind == SDC_PV_BOOL && a[9]->u.i == 0, "None/True/False");
    }
    sdc_pickle_free(p);
    /* a 10-byte LONG1 (the legacy magic number) stays a big int with its bytes */
    v = OK("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", &p);
    CHECK(v && v->kind == SDC_PV_BIGINT && v->u.str.n == 10, "big int");
    sdc_pickle_free(p);
    /* a 9-byte LONG1 that is only sign extension fits in int64 */
    v = OK("\x80\x02\x8a\x09\xfe\xff\xff\xff\xff\xff\xff\xff\xff.", &p);
    CHECK(is_int(v, -2), "sign-extended LONG1");
    sdc_pickle_free(p);
    /* protocol 0 text forms: INT, bool INT, LONG, FLOAT, STRING, UNICODE in a tuple */
    v = OK("\x80\x02(I-42\nI01\nL123L\nF2.25\nS'abc'\nVxyz\nt.", &p);
    CHECK(v && v->kind == SDC_PV_TUPLE && v->u.seq.n == 6, "text tuple");
    if (v && v->u.seq.n == 6) {
        sdc_pval **a = v->u.seq.v;
        CHECK(is_int(a[0], -42) && a[1]->kind == SDC_PV_BOOL && is_int(a[2], 123), "text ints");
        CHECK(a[3]->kind == SDC_PV_FLOAT && a[3]->u.f == 2.25, "text float");
        CHECK(is_str(a[4], "abc") && is_str(a[5], "xyz"), "text strings");
    }
    sdc_pickle_free(p);
}

static void test_strings(void) {
    sdc_pickle *p;
    /* every string/bytes opcode, in a FRAME, protocol 4 */
    sdc_pval *v = OK("\x80\x04\x95\x40\x00\x00\x00\x00\x00\x00\x00("
                     "\x8c\x02" "ab"                         /* SHORT_BINUNICODE */
                     "X\x04\x00\x00\x00" "cd\xc3\xa9"           /* BINUNICODE (é) */
                     "\x8d\x01\x00\x00\x00\x00\x00\x00\x00" "e" /* BINUNICODE8 */
                     "U\x01" "f"                                /* SHORT_BINSTRING */
                     "T\x01\x00\x00\x00" "g"                    /* BINSTRING */
                     "C\x02\x00\x01"                            /* SHORT_BINBYTES */
                     "B\x01\x00\x00\x00\xff"                    /* BINBYTES */
                     "\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x02" /* BINBYTES8 */
                     "\x96\x00\x00\x00\x00\x00\x00\x00\x00"     /* BYTEARRAY8 */
                     "t.", &p);
    CHECK(v && v->kind == SDC_PV_TUPLE && v->u.seq.n == 9, "string tuple");
    if (v && v->u.seq.n == 9) {
        sdc_pval **a = v->u.seq.v;
        CHECK(is_str(a[0], "ab") && is_str(a[1], "cd\xc3\xa9") && is_str(a[2], "e") &&
              is_str(a[3], "f") && is_str(a[4], "g"), "strings");
        CHECK(a[5]->kind == SDC_PV_BYTES && a[5]->u.str.n == 2 && a[6]->kind == SDC_PV_BYTES &&
              a[7]->kind == SDC_PV_BYTES && a[8]->kind == SDC_PV_BYTES && a[8]->u.str.n == 0, "bytes");
    }
    sdc_pickle_free(p);
}

static void test_containers(void) {
    sdc_pickle *p;
    /* {"a": [1, 2, 3], "b": (1,), "c": (1, 2), "d": (1, 2, 3), "e": {1, 2}, "f": frozenset({3}),
     *  "g": {"x": 1}} via EMPTY_DICT/SETITEMS, APPEND/APPENDS, TUPLE1-3, EMPTY_SET/ADDITEMS,
     *  FROZENSET, DICT, SETITEM */
    sdc_pval *v = OK("\x80\x04}(\x8c\x01" "a]K\x01" "a(K\x02K\x03" "e"
                     "\x8c\x01" "bK\x01\x85"
                     "\x8c\x01" "cK\x01K\x02\x86"
                     "\x8c\x01" "dK\x01K\x02K\x03\x87"
                     "\x8c\x01" "e\x8f(K\x01K\x02\x90"
                     "\x8c\x01" "f(K\x03\x91"
                     "u\x8c\x01" "g(\x8c\x01xK\x01" "ds.", &p);
    CHECK(v && v->kind == SDC_PV_DICT && v->u.seq.n == 14, "dict of 7");
    const sdc_pval *a = sdc_pval_dict_get(v, "a");
    CHECK(a && a->kind == SDC_PV_LIST && a->u.seq.n == 3 && is_int(a->u.seq.v[2], 3), "list");
    const sdc_pval *t1 = sdc_pval_dict_get(v, "b"), *t2 = sdc_pval_dict_get(v, "c"),
                   *t3 = sdc_pval_dict_get(v, "d");
    CHECK(t1 && t1->kind == SDC_PV_TUPLE && t1->u.seq.n == 1 && t2 && t2->u.seq.n == 2 && t3 &&
          t3->u.seq.n == 3 && is_int(t3->u.seq.v[0], 1), "tuples");
    const sdc_pval *s = sdc_pval_dict_get(v, "e"), *fs = sdc_pval_dict_get(v, "f");
    CHECK(s && s->kind == SDC_PV_SET && s->u.seq.n == 2 && fs && fs->kind == SDC_PV_SET &&
          fs->u.seq.ordered, "sets");
    const sdc_pval *g = sdc_pval_dict_get(v, "g");
    CHECK(g && g->kind == SDC_PV_DICT && is_int(sdc_pval_dict_get(g, "x"), 1), "DICT");
    CHECK(a && a->depth == 1 && v && v->depth == 2, "depths %d %d", a ? a->depth : -1, v ? v->depth : -1);
    sdc_pickle_free(p);
    /* the last SETITEM of a key wins, as in Python */
    v = OK("\x80\x02}\x8c\x01kK\x01s\x8c\x01kK\x02s.", &p);
    CHECK(is_int(sdc_pval_dict_get(v, "k"), 2), "last SETITEM wins");
    sdc_pickle_free(p);
    /* POP, POP_MARK, and POP on an empty frame pops the MARK (as Python does) */
    v = OK("\x80\x02K\x01K\x02" "0(K\x03K\x04" "1(0.", &p);
    CHECK(is_int(v, 1), "POP/POP_MARK");
    sdc_pickle_free(p);
}

static void test_memo_refs(void) {
    sdc_pickle *p;
    /* l = []; memo[0] = l; (l, l) via BINGET and DUP; then APPEND through the memo: every
     * reference sees it, nothing was copied */
    sdc_pval *v = OK("\x80\x02]q\x00" "2h\x00\x87" "h\x00K\x07" "a0.", &p);
    CHECK(v && v->kind == SDC_PV_TUPLE && v->u.seq.n == 3, "ref tuple");
    if (v && v->u.seq.n == 3) {
        sdc_pval **t = v->u.seq.v;
        CHECK(t[0] == t[1] && t[1] == t[2], "DUP and GET push the same node");
        CHECK(t[0]->kind == SDC_PV_LIST && t[0]->u.seq.n == 1 && is_int(t[0]->u.seq.v[0], 7),
              "mutation through the memo is visible");
    }
    sdc_pickle_free(p);
    /* LONG_BINPUT/LONG_BINGET, MEMOIZE (index = memo size), text PUT/GET */
    v = OK("\x80\x04K\x05r\x10\x00\x00\x00" "0K\x06\x94" "0K\x07p3\n" "0(j\x10\x00\x00\x00h\x01g3\nt.", &p);
    CHECK(v && v->kind == SDC_PV_TUPLE && v->u.seq.n == 3 && is_int(v->u.seq.v[0], 5) &&
          is_int(v->u.seq.v[1], 6) && is_int(v->u.seq.v[2], 7), "memo forms");
    sdc_pickle_free(p);
    /* "billion laughs": 40 levels of (x, x) describe 2^40 leaves but build 41 values */
    char b[256];
    size_t n = 0;
    memcpy(b, "\x80\x02]", 3);
    n = 3;
    for (int i = 0; i < 40; i++) { b[n++] = '2'; b[n++] = '\x86'; }
    b[n++] = '.';
    sdc_pickle_cfg c = cfg_default();
    sdc_err e;
    int rc = run(b, n, &c, &v, &p, &e);
    CHECK(rc == 0 && v && v->kind == SDC_PV_TUPLE && v->depth == 40 &&
          sdc_pickle_nobjects(p) == 41, "DUP expansion kept as references (rc %d, %zu objects)",
          rc, sdc_pickle_nobjects(p));
    printf("  2^40-leaf DUP tree: %zu values built\n", sdc_pickle_nobjects(p));
    sdc_pickle_free(p);
}

/* The torch callables: storages, _rebuild_tensor_v2, _rebuild_parameter, OrderedDict, Size. */
static void test_torch(void) {
    sdc_pickle *p;
    /* {'w': _rebuild_tensor_v2(('storage', torch.HalfStorage, '0', 'cpu', 6), 2, (2, 2), (2, 1),
     *                           False, OrderedDict()),
     *  'p': _rebuild_parameter(<same tensor via memo>, True, OrderedDict()),
     *  's': torch.Size((3, 4)), 'o': OrderedDict([('k', 1)])} */
    sdc_pval *v = OK("\x80\x02}(X\x01\x00\x00\x00w"
                     "ctorch._utils\n_rebuild_tensor_v2\n"
                     "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0"
                     "X\x03\x00\x00\x00" "cpuK\x06tQ"
                     "K\x02K\x02K\x02\x86K\x02K\x01\x86\x89" "ccollections\nOrderedDict\n)Rtq\x01R"
                     "q\x02X\x01\x00\x00\x00p"
                     "ctorch._utils\n_rebuild_parameter\nh\x02\x88" "ccollections\nOrderedDict\n)R\x87R"
                     "X\x01\x00\x00\x00sctorch\nSize\nK\x03K\x04\x86\x85R"
                     "X\x01\x00\x00\x00o" "ccollections\nOrderedDict\n]X\x01\x00\x00\x00kK\x01\x86" "a\x85R"
                     "u.", &p);
    const sdc_pval *w = sdc_pval_dict_get(v, "w"), *pp = sdc_pval_dict_get(v, "p");
    CHECK(w && w->kind == SDC_PV_TENSOR, "tensor built");
    if (w && w->kind == SDC_PV_TENSOR) {
        const sdc_pickle_tensor *t = w->u.tensor;
        CHECK(t->dtype == SDC_F16 && t->offset == 2 && t->ndim == 2 && t->shape[0] == 2 &&
              t->shape[1] == 2 && t->contiguous && t->numel == 4 && t->storage->numel == 6 &&
              !strcmp(t->storage->key, "0") && t->storage->resolved, "tensor fields");
    }
    CHECK(pp == w, "_rebuild_parameter returns its tensor (a reference)");
    const sdc_pval *s = sdc_pval_dict_get(v, "s");
    CHECK(s && s->kind == SDC_PV_TUPLE && s->u.seq.n == 2 && is_int(s->u.seq.v[1], 4), "torch.Size");
    const sdc_pval *o = sdc_pval_dict_get(v, "o");
    CHECK(o && o->kind == SDC_PV_DICT && o->u.seq.ordered && is_int(sdc_pval_dict_get(o, "k"), 1),
          "OrderedDict from pairs");
    CHECK(p && sdc_pickle_nstorages(p) == 1 && sdc_pickle_nseen(p) == 0, "one storage, no globals");
    sdc_pickle_free(p);
    /* a transposed view: built, marked non-contiguous (the loader refuses it by name);
     * STACK_GLOBAL, NEWOBJ on OrderedDict and BUILD on it (its _metadata) are fine */
    v = OK("\x80\x04\x8c\x0ctorch._utils\x8c\x12_rebuild_tensor_v2\x93"
           "((\x8c\x07storage\x8c\x05torch\x8c\x0c" "FloatStorage\x93\x8c\x01" "1\x8c\x03" "cpuK\x06tQ"
           "K\x00K\x02K\x03\x86K\x01K\x02\x86\x89" "ccollections\nOrderedDict\n)\x81}b" "tR.", &p);
    CHECK(v && v->kind == SDC_PV_TENSOR && !v->u.tensor->contiguous && v->u.tensor->dtype == SDC_F32,
          "strided view kept as non-contiguous");
    sdc_pickle_free(p);
    /* the same storage named twice is one storage (shared) */
    v = OK("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "9"
           "X\x03\x00\x00\x00" "cpuK\x04tQ" "(X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
           "X\x01\x00\x00\x00" "9X\x03\x00\x00\x00" "cpuK\x04tQ\x86.", &p);
    CHECK(v && v->kind == SDC_PV_TUPLE && v->u.seq.n == 2 &&
          v->u.seq.v[0]->u.storage == v->u.seq.v[1]->u.storage && sdc_pickle_nstorages(p) == 1,
          "shared storage");
    sdc_pickle_free(p);
}

/* Non-allowlisted globals: dangerous ones refuse (unless allowed), others are placeholders. */
static void test_globals(void) {
    sdc_pickle_cfg c = cfg_default();
    /* the classic: os.system("echo pwned") */
    const char evil[] = "\x80\x02" "cos\nsystem\nX\x0a\x00\x00\x00" "echo pwned\x85R.";
    REFUSE(evil, NULL, "this file would run os.system when loaded by PyTorch; sdc ran nothing "
                       "(--allow-unsafe-pickle loads the weights anyway)");
    /* several: all named; STACK_GLOBAL and INST reach the same check */
    REFUSE("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93" "0(isubprocess\nPopen\n"
           "0cposix\nsystem\n.", NULL,
           "would run builtins.eval, subprocess.Popen, posix.system when");
    REFUSE("\x80\x02" "c__builtin__\ngetattr\n.", NULL, "would run builtins.getattr when");
    REFUSE("\x80\x02" "cfunctools\npartial\n.", NULL, "functools.partial");
    REFUSE("\x80\x02" "ctorch.storage\n_load_from_bytes\n.", NULL, "torch.storage._load_from_bytes");
    /* allowed or inspected: inert placeholders, recorded as dangerous; REDUCE makes another */
    for (int mode = 0; mode < 2; mode++) {
        sdc_pickle_cfg a = c;
        if (mode) a.inspect = 1; else a.allow_unsafe = 1;
        sdc_pickle *p;
        sdc_pval *v;
        sdc_err e;
        int rc = run(P(evil), &a, &v, &p, &e);
        CHECK(rc == 0 && v && v->kind == SDC_PV_OPAQUE && !strcmp(v->u.opaque, "os.system") &&
              sdc_pickle_nseen(p) == 1 && sdc_pickle_seen_at(p, 0)->dangerous == 1,
              "placeholder for os.system (mode %d, rc %d: %s)", mode, rc, e.msg);
        sdc_pickle_free(p);
    }
    /* unknown (lightning callback): placeholder, not dangerous; NEWOBJ, BUILD, SETITEMS and
     * APPENDS on it stay inert */
    const char cb[] = "\x80\x02}X\x01\x00\x00\x00" "c"
                      "cpytorch_lightning.callbacks.model_checkpoint\nModelCheckpoint\n)\x81"
                      "}X\x01\x00\x00\x00kK\x01sb(K\x01K\x02u(K\x03" "es.";
    sdc_pickle *p;
    sdc_pval *v;
    sdc_err e;
    int rc = run(P(cb), &c, &v, &p, &e);
    const sdc_pval *x = sdc_pval_dict_get(v, "c");
    CHECK(rc == 0 && x && x->kind == SDC_PV_OPAQUE && sdc_pickle_nseen(p) == 1 &&
          !sdc_pickle_seen_at(p, 0)->dangerous &&
          !strcmp(sdc_pickle_seen_at(p, 0)->name,
                  "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"),
          "lightning placeholder (rc %d: %s)", rc, e.msg);
    sdc_pickle_free(p);
    sdc_pickle_cfg s = c;
    s.strict = 1;
    REFUSE(cb, &s, "global pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint is not "
                   "on sdc's allowlist (--strict refuses it)");
    /* a name cannot forge lines in a listing: control characters become '?' */
    rc = run(P("\x80\x04\x8c\x03" "a\nb\x8c\x01" "c\x93."), &c, &v, &p, &e);
    CHECK(rc == 0 && sdc_pickle_nseen(p) == 1 && !strcmp(sdc_pickle_seen_at(p, 0)->name, "a?b.c") &&
          v && v->kind == SDC_PV_OPAQUE && !strcmp(v->u.opaque, "a?b.c"), "sanitized name");
    sdc_pickle_free(p);
    /* a tensor rebuilt from a placeholder storage stays a placeholder */
    rc = run(P("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(cnumpy.core.multiarray\n_reconstruct\n"
               "K\x00)))\x89Ntq\x00R."), &c, &v, &p, &e);
    CHECK(rc == 0 && v && v->kind == SDC_PV_OPAQUE, "tensor from placeholder (rc %d: %s)", rc, e.msg);
    sdc_pickle_free(p);
    CHECK(sdc_pickle_is_dangerous("os.path", "join") && sdc_pickle_is_dangerous("nt", "system") &&
          !sdc_pickle_is_dangerous("ossify", "x") && !sdc_pickle_is_dangerous("builtins", "set"),
          "danger list matching");
    /* dotted names resolve attribute by attribute in Python: judged step by step */
    CHECK(sdc_pickle_is_dangerous("torch", "serialization.os.system") &&
          sdc_pickle_is_dangerous("torch", "serialization.os") &&
          sdc_pickle_is_dangerous("collections", "OrderedDict.__init__.__globals__") &&
          sdc_pickle_is_dangerous("torch", "nn.__builtins__.eval") &&
          !sdc_pickle_is_dangerous("pytorch_lightning.utilities", "parsing.AttributeDict") &&
          !sdc_pickle_is_dangerous("collections", "OrderedDict"), "dotted-name chains");
    REFUSE("\x80\x04\x8c\x05torch\x8c\x17serialization.os.system\x93.", NULL,
           "would run torch.serialization.os.system when");
}

/* Class 8, 12, 14: structure errors, each with its message and offset. */
static void test_structure(void) {
    REFUSE("\x80\x02K\x01\xff.", NULL, "unknown opcode 0xff: t.pkl byte 4");
    REFUSE("K\x01.", NULL, "does not start with PROTO");
    REFUSE("\x80\x02\x80\x02N.", NULL, "PROTO repeated or not at the start: t.pkl byte 2");
    REFUSE("\x80\x06N.", NULL, "pickle protocol 6");
    REFUSE("\x80\x02N", NULL, "no STOP before the end");
    REFUSE("\x80\x02h\x05.", NULL, "memo GET of unset slot 5");
    REFUSE("\x80\x02Nr\xff\xff\xff\x7f.", NULL, "memo index 2147483647 over the limit");
    REFUSE("\x80\x02" "a.", NULL, "stack underflow in APPEND");
    REFUSE("\x80\x02.", NULL, "stack underflow in STOP");
    REFUSE("\x80\x02N(R.", NULL, "stack underflow in REDUCE");   /* cannot reach below a MARK */
    REFUSE("\x80\x02Nt.", NULL, "TUPLE without MARK");
    REFUSE("\x80\x02}(K\x01u.", NULL, "SETITEMS with an odd number of items");
    REFUSE("\x80\x02]K\x01K\x02s.", NULL, "SETITEM on a list (needs a dict)");
    REFUSE("\x80\x02)K\x01K\x02s.", NULL, "SETITEM on a tuple (needs a dict)");
    REFUSE("\x80\x02}K\x01" "a.", NULL, "APPEND on a dict (needs a list)");
    REFUSE("\x80\x02K\x01(K\x02" "e.", NULL, "APPENDS on a int (needs a list)");
    REFUSE("\x80\x04(K\x01\x91(K\x02\x90.", NULL, "ADDITEMS on a frozenset (needs a set)");
    REFUSE("\x80\x02}]K\x01s.", NULL, "unhashable list used as a dict key");
    REFUSE("\x80\x02K\x01)R.", NULL, "REDUCE on a int, which is not callable");
    REFUSE("\x80\x02]}b.", NULL, "BUILD on a list");
    REFUSE("\x80\x02" "ctorch\nFloatStorage\n)R.", NULL, "REDUCE on torch.FloatStorage, which sdc does not call");
    REFUSE("\x80\x02" "X\x05\x00\x00\x00" "ab.", NULL, "BINUNICODE of 5 bytes runs past the end");
    REFUSE("\x80\x02T\xfe\xff\xff\xff.", NULL, "BINSTRING with negative length");
    REFUSE("\x80\x02\x8b\xff\xff\xff\xff.", NULL, "LONG4 with negative length");
    REFUSE("\x80\x02X\x02\x00\x00\x00\xc3\x28.", NULL, "BINUNICODE is not valid UTF-8");
    REFUSE("\x80\x02\x8c\x02\xc0\xaf.", NULL, "SHORT_BINUNICODE is not valid UTF-8");
    REFUSE("\x80\x02J\x01\x00", NULL, "BININT cut short");
    REFUSE("\x80\x02" "cos\nsys", NULL, "GLOBAL: line without newline");
    REFUSE("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", NULL, "FRAME runs past the end");
    REFUSE("\x80\x02\x82\x01.", NULL, "EXT1 (extension registry) is not supported");
    REFUSE("\x80\x05\x97.", NULL, "NEXT_BUFFER (out-of-band buffers) is not supported");
    REFUSE("\x80\x02S'a\\x41'\n.", NULL, "STRING with escapes is not supported");
}

/* Class 10 and 11: persistent ids and _rebuild_tensor_v2 arguments. */
static void test_tensor_refusals(void) {
#define PID(type, key, numel) "(X\x07\x00\x00\x00storagectorch\n" type "\nX\x01\x00\x00\x00" key \
                              "X\x03\x00\x00\x00" "cpu" numel "tQ"
#define V2 "ctorch._utils\n_rebuild_tensor_v2\n("
#define TAIL "\x89" "ccollections\nOrderedDict\n)RtR."
    REFUSE("\x80\x02X\x01\x00\x00\x00" "0Q.", NULL, "persistent id is a str, not ('storage'");
    REFUSE("\x80\x02(X\x07\x00\x00\x00storageK\x01X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01tQ.",
           NULL, "persistent id names a int, not a torch storage type");
    REFUSE("\x80\x02(X\x07\x00\x00\x00stooageK\x01K\x01K\x01K\x01tQ.", NULL,
           "persistent id does not start with 'storage'");
    REFUSE("\x80\x02" PID("FloatStorage", "0", "J\xff\xff\xff\xff") ".", NULL, "persistent id: bad numel");
    REFUSE("\x80\x02" PID("DoubleStorage", "0", "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f") ".", NULL,
           "elements overflow");
    REFUSE("\x80\x02" PID("FloatStorage", "/", "K\x01") ".", NULL, "persistent id: bad storage key");
    REFUSE("\x80\x02" PID("FloatStorage", "0", "K\x01") PID("HalfStorage", "0", "K\x01") ".", NULL,
           "storage '0' named twice with different type or size");
    REFUSE("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x07\x00\x00\x00missing"
           "X\x03\x00\x00\x00" "cpuK\x01tQ.", NULL, "storage 'missing' has no record");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00K\x04\x85K\x01\x85" "ccollections\nOrderedDict\n)RtR.",
           NULL, "_rebuild_tensor_v2 with 5 arguments");
    REFUSE("\x80\x02" V2 "K\x01K\x00K\x04\x85K\x01\x85" TAIL, NULL,
           "_rebuild_tensor_v2: storage argument is a int");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "J\xff\xff\xff\xffK\x04\x85K\x01\x85" TAIL,
           NULL, "_rebuild_tensor_v2: bad storage offset");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00K\x04K\x01\x85" TAIL, NULL,
           "size and stride must be tuples");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t"
           "(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t" TAIL, NULL, "9 dims (at most 8)");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00K\x04\x85K\x01K\x01\x86" TAIL, NULL,
           "1 sizes but 2 strides");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x01K\x04\x85K\x01\x85" TAIL, NULL,
           "runs past its storage '0' of 4 elements");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00J\xff\xff\xff\xff\x85K\x01\x85" TAIL,
           NULL, "out of range");
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00X\x01\x00\x00\x00" "a\x85K\x01\x85" TAIL,
           NULL, "size or stride not an integer");
    /* huge dims whose product overflows int64 */
    REFUSE("\x80\x02" V2 PID("FloatStorage", "0", "K\x04") "K\x00(\x8a\x07\x00\x00\x00\x00\x00\x80\x00"
           "\x8a\x07\x00\x00\x00\x00\x00\x80\x00\x8a\x07\x00\x00\x00\x00\x00\x80\x00t(K\x01K\x01K\x01t" TAIL,
           NULL, "element count overflows");
}

/* Class 13: the budgets. */
static void test_limits(void) {
    size_t n = SDC_PICKLE_MAX_STACK + 16;
    char *b = malloc(n + 8);
    memcpy(b, "\x80\x02", 2);
    memset(b + 2, 'N', n);                 /* None pushed past the stack budget */
    b[n + 2] = '.';
    refuse(__LINE__, b, n + 3, NULL, "stack deeper than 1048576 values (limit)");
    memset(b + 2, '(', 300);               /* MARKs */
    b[302] = '.';
    refuse(__LINE__, b, 303, NULL, "more than 256 open MARKs (limit)");
    memcpy(b + 2, "N", 1);                 /* (((None,),),) 300 deep */
    memset(b + 3, '\x85', 300);
    b[303] = '.';
    refuse(__LINE__, b, 304, NULL, "values nested deeper than 256 (limit)");
    /* total objects: a small budget so the test stays fast */
    for (size_t i = 0; i < 2000; i++) { b[2 + 2 * i] = ')'; b[3 + 2 * i] = '0'; }
    b[4002] = '.';
    sdc_pickle_cfg c = cfg_default();
    c.max_objects = 1000;
    refuse(__LINE__, b, 4003, &c, "more than 1000 objects (limit)");
    /* container slots: one list grown by APPENDS of None (a shared constant: no new values) */
    n = 0;
    memcpy(b, "\x80\x02]", 3);
    n = 3;
    for (int k = 0; k < 30; k++) {
        b[n++] = '(';
        for (int j = 0; j < 100; j++) b[n++] = 'N';
        b[n++] = 'e';
    }
    b[n++] = '.';
    c.max_objects = 0;
    c.max_items = 2000;
    refuse(__LINE__, b, n, &c, "more than 2000 container items (limit)");
    free(b);
}

int main(void) {
    test_scalars();
    test_strings();
    test_containers();
    test_memo_refs();
    test_torch();
    test_globals();
    test_structure();
    test_tensor_refusals();
    test_limits();
    printf(bad ? "FAIL (%d)\n" : "PASS\n", bad);
    return bad ? 1 : 0;
}
