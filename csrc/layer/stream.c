/* stream.c - a persistent single-step ("streaming") object for any cell.
 *
 * The *_step entry points of fastrnn.h take the weights as they are and pay
 * for it on every call: scratch is allocated, and the products are formed
 * from unpacked weights. A stream does that work once: frnn_stream_create
 * packs W_ih^T and W_hh^T (the latter in whatever layout the cells' forward
 * loops read, through frnn_pack_recurrent), copies the biases, and sizes
 * every buffer a step needs, all in one allocation. A step is then the
 * input projection, one call of the cell's forward loop (its ops' steps)
 * with steps = 1, and a [B, H] copy: no allocation, no re-packing.
 *
 * The kernel table: the packed layouts belong to the table that packed
 * them, so the stream remembers that table (`k`) and every step uses it,
 * whatever frnn_select_isa chooses later. The tables are static const, so
 * the pointer stays valid for the life of the process; the input
 * projection is given the same table (frnn_project_inputs takes it).
 *
 * Compiled once per dtype (real.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "layer/layer.h"
#include "runtime/memory.h"

struct FN(frnn_stream) {
    const FN(frnn_kernel_table) *k; /* the table that packed w_ih_p / w_hh_p */
    FN(frnn_cell) cell;
    frnn_int B, In;
    real *w_ih_p;  /* W_ih^T packed by k (frnn_pack_transposed) */
    real *w_hh_p;  /* W_hh^T packed by frnn_pack_recurrent */
    real *b_ih;    /* [GH] */
    real *b_hh;    /* [GH] */
    real *xp;      /* [B, GH] x W_ih^T + b_ih */
    real *h_new;   /* [B, H] the forward loop's out, which must not alias h */
    real *scratch; /* [frnn_cell_scratch(cell, B)] */
};

/* Every array starts on a 64-byte boundary (a cache line, an AVX-512 vector). */
#define FRNN_STREAM_ALIGN 64
static size_t FN(stream_round)(size_t bytes) {
    return (bytes + FRNN_STREAM_ALIGN - 1) / FRNN_STREAM_ALIGN * FRNN_STREAM_ALIGN;
}

/* Lays out a region of `elems` reals at *off and advances *off past it,
 * rounded up; returns the region's offset, or sets *failed if the size does
 * not fit (checked, runtime/sizes.h). The sizes are bounded far below that (see
 * frnn_stream_create), so this never fails in practice; it is here so that
 * no size in the core is computed unchecked. */
static size_t FN(stream_region)(frnn_int elems, size_t *off, int *failed) {
    size_t bytes;
    const size_t at = *off;
    if (frnn_size_bytes(elems, sizeof(real), &bytes) || bytes > SIZE_MAX / 2 - *off) {
        *failed = 1;
        return 0;
    }
    *off += FN(stream_round)(bytes);
    return at;
}

FN(frnn_stream) *FN(frnn_stream_create)(const frnn_cell_desc *desc, frnn_int B, frnn_int In,
                                        const real *w_ih, const real *w_hh, const real *b_ih,
                                        const real *b_hh) {
    FN(frnn_cell) cell;
    if (FN(frnn_make_cell)(desc, &cell) != FRNN_OK) return NULL;
    /* Sizes a caller could not mean; the 2^24 bound keeps every product
     * below far from overflowing 64 bits. */
    const frnn_int limit = (frnn_int)1 << 24, H = cell.H;
    if (B < 1 || In < 1 || H < 1 || B > limit || In > limit || H > limit) return NULL;
    if (!w_ih || !w_hh) return NULL;
    if (FN(frnn_check_layer)(&cell, 1, B, In) != FRNN_OK) return NULL;
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int GH = cell.GH;
    const frnn_int ih_size = FN(frnn_packed_elems)(k, In, GH);
    const frnn_int hh_size = FN(frnn_recurrent_packed_size)(&cell, k);
    const frnn_int scratch_size = FN(frnn_cell_scratch)(&cell, B);
    const size_t r = sizeof(real);
    /* offsets, in bytes, from the (aligned) start of the data region */
    size_t off = 0;
    int failed = 0;
    const size_t o_ih = FN(stream_region)(ih_size, &off, &failed);
    const size_t o_hh = FN(stream_region)(hh_size, &off, &failed);
    const size_t o_bih = FN(stream_region)(GH, &off, &failed);
    const size_t o_bhh = FN(stream_region)(GH, &off, &failed);
    const size_t o_xp = FN(stream_region)(frnn_size_mul(B, GH), &off, &failed);
    const size_t o_hn = FN(stream_region)(frnn_size_mul(B, H), &off, &failed);
    const size_t o_sc = FN(stream_region)(scratch_size > 0 ? scratch_size : 1, &off, &failed);
    if (failed) return NULL;
    const size_t head = FN(stream_round)(sizeof(struct FN(frnn_stream)));

    /* One allocation: the struct, then the data region at an aligned address
     * (malloc guarantees less than FRNN_STREAM_ALIGN). The struct sits at the
     * start, so free(s) releases everything. */
    unsigned char *raw = frnn_alloc(head + off + FRNN_STREAM_ALIGN);
    if (!raw) return NULL;
    FN(frnn_stream) *s = (FN(frnn_stream) *)raw;
    uintptr_t data_addr = (uintptr_t)(raw + head);
    data_addr = (data_addr + FRNN_STREAM_ALIGN - 1) / FRNN_STREAM_ALIGN * FRNN_STREAM_ALIGN;
    unsigned char *data = (unsigned char *)data_addr;

    s->k = k;
    s->cell = cell;
    s->B = B;
    s->In = In;
    s->w_ih_p = (real *)(data + o_ih);
    s->w_hh_p = (real *)(data + o_hh);
    s->b_ih = (real *)(data + o_bih);
    s->b_hh = (real *)(data + o_bhh);
    s->xp = (real *)(data + o_xp);
    s->h_new = (real *)(data + o_hn);
    s->scratch = (real *)(data + o_sc);

    FN(frnn_pack_transposed)(k, GH, In, w_ih, s->w_ih_p);
    FN(frnn_pack_recurrent)(&cell, k, w_hh, s->w_hh_p);
    if (b_ih) memcpy(s->b_ih, b_ih, r * (size_t)GH);
    else memset(s->b_ih, 0, r * (size_t)GH);
    if (b_hh) memcpy(s->b_hh, b_hh, r * (size_t)GH);
    else memset(s->b_hh, 0, r * (size_t)GH);
    return s;
}

int FN(frnn_stream_step)(FN(frnn_stream) *s, const real *x, real *h, real *c) {
    if (!s || !x || !h || (s->cell.ops->has_cell_state && !c)) return FRNN_ERR_UNSUPPORTED;
    const FN(frnn_kernel_table) *k = s->k;
    const frnn_int B = s->B, H = s->cell.H, GH = s->cell.GH;
    FN(frnn_project_inputs)(k, B, s->In, GH, x, s->w_ih_p, s->b_ih, s->xp);
    s->cell.ops->steps(&s->cell, k, 1, B, s->xp, s->w_hh_p, s->b_hh, h,
                       s->cell.ops->has_cell_state ? c : NULL, s->h_new, NULL, s->scratch);
    memcpy(h, s->h_new, sizeof(real) * (size_t)(B * H));
    return FRNN_OK;
}

void FN(frnn_stream_destroy)(FN(frnn_stream) *s) { free(s); }
