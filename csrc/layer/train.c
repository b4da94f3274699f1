/* train.c - train a layer + linear head over a whole sequence, window by
 * window, without returning to Python: TBPTT(k1, k2) (windowed = k1 = k2),
 * fused output head and loss, clipping and the optimizer step.
 *
 * T = time, B = batch, In = input (or vocabulary), H = hidden, O = outputs,
 * GH = gates * H, W = k2 (longest window). Semantics: docs/TRAINING.md. The
 * working memory is O(W B GH + P), independent of T: windows are projected,
 * run and differentiated one at a time, and the only state kept between
 * them is the carried (B, H) state. Compiled once per dtype.
 *
 * Per-output depth K (wildml's bptt_truncate) runs the whole sequence as one
 * window, so its memory is O(T B G H + K B G H) like full BPTT (K clamped to
 * T - 1: a deeper K is the same gradient). Not here: threads.
 *
 * The cell comes in through its ops (cells/cell.h): its forward and
 * backward loops, whether it carries a cell state and where its workspace
 * keeps it; nothing here knows which cell runs.
 *
 * State resets (resets [T, B], optional): the state entering step t of row b
 * is zero when resets[t, b] is set, and no gradient flows through it. A
 * window is then run in segments that start at the steps where some row
 * resets, each through the cell's own forward / backward loops from the
 * segment's entering state (the previous output, its reset rows zeroed:
 * h_prev below), so a window without resets is the same single call as
 * before.
 *
 * Trust: frnn_train checks its configuration, its sizes (with overflow
 * checks, runtime/sizes.h) and the indices it will look up before it reads
 * anything else, and a window whose loss or unclipped gradient is not
 * finite stops the run before it changes anything (fastrnn.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "layer/layer.h"

/* Where each parameter lives: in a flat vector (theta, grad, m, v), or, for
 * frnn_train_grads, in arrays of the caller's own. FN(weights) is the
 * read-only view the window code takes of the parameters; FN(params) the
 * writable one of a gradient. */
typedef struct {
    real *w_ih, *w_hh, *b_ih, *b_hh, *w_hy, *b_y; /* biases NULL when absent */
} FN(params);
typedef struct {
    const real *w_ih, *w_hh, *b_ih, *b_hh, *w_hy, *b_y; /* biases NULL when absent */
} FN(weights);

/* P, checked (runtime/sizes.h): FRNN_SIZE_INVALID on overflow. */
static frnn_int param_count(const frnn_train_config *cfg, frnn_int GH) {
    const frnn_int layer = frnn_size_add(frnn_size_mul(GH, cfg->In), frnn_size_mul(GH, cfg->H));
    const frnn_int biases = !cfg->has_bias ? 0 : cfg->no_bias_hh ? GH : frnn_size_mul(2, GH);
    const frnn_int head = frnn_size_add(frnn_size_mul(cfg->O, cfg->H), cfg->has_head_bias ? cfg->O : 0);
    return frnn_size_add(frnn_size_add(layer, biases), head);
}

static FN(params) FN(split)(const frnn_train_config *cfg, frnn_int GH, real *flat) {
    FN(params) p;
    p.w_ih = flat;
    p.w_hh = p.w_ih + GH * cfg->In;
    real *next = p.w_hh + GH * cfg->H;
    p.b_ih = cfg->has_bias ? next : NULL;
    if (p.b_ih) next += GH;
    p.b_hh = cfg->has_bias && !cfg->no_bias_hh ? next : NULL; /* one bias: b_ih alone */
    if (p.b_hh) next += GH;
    p.w_hy = next;
    p.b_y = cfg->has_head_bias ? p.w_hy + cfg->O * cfg->H : NULL;
    return p;
}

static FN(weights) FN(read_only)(FN(params) p) {
    const FN(weights) r = {p.w_ih, p.w_hh, p.b_ih, p.b_hh, p.w_hy, p.b_y};
    return r;
}

/* The six parameters of p as (pointer, length) pairs in theta's order;
 * absent biases have length 0. */
enum { N_PARAMS = 6 };
static void FN(parts)(const frnn_train_config *cfg, frnn_int GH, FN(params) p,
                      real *ptr[N_PARAMS], frnn_int len[N_PARAMS]) {
    ptr[0] = p.w_ih, len[0] = GH * cfg->In;
    ptr[1] = p.w_hh, len[1] = GH * cfg->H;
    ptr[2] = p.b_ih, len[2] = p.b_ih ? GH : 0;
    ptr[3] = p.b_hh, len[3] = p.b_hh ? GH : 0;
    ptr[4] = p.w_hy, len[4] = cfg->O * cfg->H;
    ptr[5] = p.b_y, len[5] = p.b_y ? cfg->O : 0;
}

/* dst = 0, parameter by parameter (a flat grad is one run of them). */
static void FN(zero_params)(const frnn_train_config *cfg, frnn_int GH, FN(params) dst) {
    real *d[N_PARAMS];
    frnn_int n[N_PARAMS];
    FN(parts)(cfg, GH, dst, d, n);
    for (int j = 0; j < N_PARAMS; j++)
        if (n[j]) memset(d[j], 0, sizeof(real) * (size_t)n[j]);
}

/* dst += src, parameter by parameter: the same additions, element for
 * element, as one loop over a flat vector. */
static void FN(add_params)(const frnn_train_config *cfg, frnn_int GH, FN(params) dst,
                           FN(params) src) {
    real *d[N_PARAMS], *a[N_PARAMS];
    frnn_int n[N_PARAMS], unused[N_PARAMS];
    FN(parts)(cfg, GH, dst, d, n);
    FN(parts)(cfg, GH, src, a, unused);
    for (int j = 0; j < N_PARAMS; j++)
        for (frnn_int i = 0; i < n[j]; i++) d[j][i] += a[j][i];
}

/* max and (float64) sum of a row of logits, in LANES independent chains: one
 * chain is a latency-bound loop as long as the vocabulary, per output step.
 * The max is exact in any order; the sum's fixed order keeps it deterministic. */
enum { LANES = 8 };
static real FN(row_max)(frnn_int n, const real *z) {
    real lane[LANES];
    for (int l = 0; l < LANES; l++) lane[l] = z[0];
    frnn_int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) lane[l] = z[i + l] > lane[l] ? z[i + l] : lane[l];
    for (; i < n; i++) lane[0] = z[i] > lane[0] ? z[i] : lane[0];
    real m = lane[0];
    for (int l = 1; l < LANES; l++) m = lane[l] > m ? lane[l] : m;
    return m;
}

static double FN(row_sum)(frnn_int n, const real *z) {
    double lane[LANES] = {0};
    frnn_int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) lane[l] += (double)z[i + l];
    for (; i < n; i++) lane[0] += (double)z[i];
    return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

/* The head over `rows` hidden states: z = h W_hy^T + b_y, the loss terms and
 * dz = dl/dz * scale. Returns the summed (unscaled) loss. z_dz: [rows, O]. */
static double FN(head_loss)(const FN(frnn_kernel_table) *k, const frnn_train_config *cfg,
                            frnn_int rows, const int64_t *tidx, const real *tval, real scale,
                            real *z_dz) {
    const frnn_int O = cfg->O;
    double loss = 0;
    for (frnn_int r = 0; r < rows; r++) {
        real *z = z_dz + r * O;
        switch (cfg->head) {
        case FRNN_HEAD_SOFTMAX_CE: {
            const real zmax = FN(row_max)(O, z);
            const frnn_int y = (frnn_int)tidx[r];
            const real zy = z[y] - zmax;
            for (frnn_int o = 0; o < O; o++) z[o] -= zmax;
            k->exp_nonpositive(O, z, z);
            const double sum = FN(row_sum)(O, z);
            loss += log(sum) - (double)zy;
            const real inv = (real)(1 / sum) * scale;
            for (frnn_int o = 0; o < O; o++) z[o] *= inv;
            z[y] -= scale;
            break;
        }
        case FRNN_HEAD_SIGMOID_BCE:
            for (frnn_int o = 0; o < O; o++) {
                const double zz = z[o], y = tval[r * O + o];
                loss += (zz > 0 ? zz : 0) - zz * y + log1p(exp(-fabs(zz)));
                const double s = zz >= 0 ? 1 / (1 + exp(-zz)) : exp(zz) / (1 + exp(zz));
                z[o] = (real)(s - y) * scale;
            }
            break;
        case FRNN_HEAD_SIGMOID_MSE:
            /* l = 0.5 (y - s)^2, dl/dz = (s - y) s (1 - s), with s (1 - s) =
             * e / (1 + e)^2, e = exp(-|z|): 1 - s from a rounded s would lose
             * every digit where the sigmoid saturates */
            for (frnn_int o = 0; o < O; o++) {
                const double zz = z[o], y = tval[r * O + o];
                const double e = exp(-fabs(zz)), s = zz >= 0 ? 1 / (1 + e) : e / (1 + e);
                loss += 0.5 * (y - s) * (y - s);
                z[o] = (real)((s - y) * (e / ((1 + e) * (1 + e)))) * scale;
            }
            break;
        case FRNN_HEAD_MSE:
            for (frnn_int o = 0; o < O; o++) {
                const real d = z[o] - tval[r * O + o];
                loss += (double)d * (double)d;
                z[o] = 2 * d * scale;
            }
            break;
        }
    }
    return loss;
}

/* Clip a window gradient by norm, over the flat vector (never NULL with
 * FRNN_CLIP_NORM; its sum of squares runs in theta's order). Clipping by
 * value is done by FN(check_window), in the pass that checks it. */
static void FN(clip_norm)(const FN(frnn_kernel_table) *k, const frnn_train_config *cfg,
                          frnn_int P, real *g_flat) {
    if (cfg->clip != FRNN_CLIP_NORM) return;
    const double norm = sqrt(k->sum_squares(P, g_flat));
    if (norm > cfg->clip_value) k->scale(P, g_flat, (real)(cfg->clip_value / (norm + 1e-6)));
}

static void FN(optimizer_step)(const FN(frnn_kernel_table) *k, const frnn_train_config *cfg,
                               frnn_int P, real *theta, const real *g, real *m, real *v,
                               int64_t step) {
    const real lr = (real)cfg->lr, eps = (real)cfg->eps;
    switch (cfg->opt) {
    case FRNN_OPT_SGD: k->sgd(P, theta, g, m, lr, (real)cfg->momentum, cfg->nesterov); break;
    case FRNN_OPT_ADAGRAD: k->adagrad(P, theta, g, m, lr, eps); break;
    case FRNN_OPT_RMSPROP: k->rmsprop(P, theta, g, v, lr, (real)cfg->alpha, eps); break;
    case FRNN_OPT_ADAM:
        k->adam(P, theta, g, m, v, lr, (real)cfg->beta1, (real)cfg->beta2,
                (real)(1 - pow(cfg->beta1, (double)step)), (real)(1 - pow(cfg->beta2, (double)step)),
                eps);
        break;
    default: break;
    }
}

/* Everything a trainer needs for one window, carved out of one allocation. */
typedef struct {
    FN(frnn_cell) cell;
    const FN(frnn_kernel_table) *k;
    FN(weights) p;                     /* the parameters (read only) */
    FN(params) g;                      /* the window gradient gw */
    const real *b_ih, *b_hh;           /* theta's biases or zeros */
    real *gw, *xp, *out, *ws, *Gx, *Gh, *d_out, *zdz;
    real *h_prev;                      /* [W, B, H] the state entering each step (resets only) */
    real *c_seg;                       /* [B, H] a segment's entering cell state */
    const uint8_t *resets;             /* [T, B] or NULL */
    real *w_hh_tp, *w_hh_p, *w_ih_tp, *w_hy_tp, *cell_scratch;
} FN(window);

/* Head forward, loss and head backward for the `rows` hidden states starting
 * at step `first` of a window that starts at step s with L steps: fills
 * g.w_hy, g.b_y and d_out (zero outside the loss steps). Returns the
 * reduced loss. */
static double FN(head_step)(const frnn_train_config *cfg, FN(window) *w, frnn_int s,
                            frnn_int L, frnn_int first, frnn_int last,
                            const int64_t *target_idx, const real *target) {
    const FN(frnn_kernel_table) *k = w->k;
    const frnn_int B = cfg->B, H = cfg->H, O = cfg->O;
    const frnn_int rows = (last - first) * B;
    const real *h_rows = w->out + (first - s) * B * H;
    const frnn_int terms = cfg->head == FRNN_HEAD_SOFTMAX_CE ? rows : rows * O;
    const real scale = cfg->reduce_mean ? (real)1 / (real)terms : (real)1;
    FN(frnn_pack_transposed)(k, O, H, w->p.w_hy, w->w_hy_tp);
    for (frnn_int r = 0; r < rows; r++) {
        if (w->p.b_y) memcpy(w->zdz + r * O, w->p.b_y, sizeof(real) * (size_t)O);
        else memset(w->zdz + r * O, 0, sizeof(real) * (size_t)O);
    }
    k->gemm_nn_packed(rows, O, H, h_rows, H, w->w_hy_tp, 1, w->zdz, O);
    const int64_t *tidx = target_idx ? target_idx + (cfg->many_to_one ? 0 : first * B) : NULL;
    const real *tval = target ? target + (cfg->many_to_one ? 0 : first * B * O) : NULL;
    double loss = FN(head_loss)(k, cfg, rows, tidx, tval, scale, w->zdz);
    if (cfg->reduce_mean) loss /= (double)terms;
    k->gemm_tn(O, H, rows, w->zdz, O, h_rows, H, 0, w->g.w_hy, H);
    if (w->g.b_y) FN(frnn_column_sums)(rows, O, w->zdz, w->g.b_y);
    memset(w->d_out, 0, sizeof(real) * (size_t)(L * B * H));
    k->gemm_nn(rows, H, O, w->zdz, O, w->p.w_hy, H, 0, w->d_out + (first - s) * B * H, H);
    return loss;
}

/* The layer's weight gradients of a window [s, s+L) from its gate gradients
 * (Gx, Gh: [L, B, GH]) and the state it started from. */
static void FN(layer_weight_grads)(const frnn_train_config *cfg, FN(window) *w, frnn_int s,
                                   frnn_int L, const real *x, const int64_t *idx,
                                   const real *h_start) {
    const FN(frnn_kernel_table) *k = w->k;
    const frnn_int B = cfg->B, In = cfg->In, H = cfg->H, GH = w->cell.GH;
    if (cfg->index_input) { /* scatter-add: the transpose of the lookup */
        memset(w->g.w_ih, 0, sizeof(real) * (size_t)(GH * In));
        for (frnn_int r = 0; r < L * B; r++) {
            const int64_t col = idx[s * B + r];
            const real *gr = w->Gx + r * GH;
            for (frnn_int gi = 0; gi < GH; gi++) w->g.w_ih[gi * In + col] += gr[gi];
        }
    } else {
        k->gemm_tn(GH, In, L * B, w->Gx, GH, x + s * B * In, In, 0, w->g.w_ih, In);
    }
    if (w->resets) { /* h_{t-1} with the reset rows zeroed (FN(window_forward)) */
        k->gemm_tn(GH, H, L * B, w->Gh, GH, w->h_prev, H, 0, w->g.w_hh, H);
    } else {
        k->gemm_tn(GH, H, B, w->Gh, GH, h_start, H, 0, w->g.w_hh, H);
        if (L > 1) k->gemm_tn(GH, H, (L - 1) * B, w->Gh + B * GH, GH, w->out, H, 1, w->g.w_hh, H);
    }
    if (w->g.b_ih) FN(frnn_column_sums)(L * B, GH, w->Gx, w->g.b_ih);
    if (w->g.b_hh) FN(frnn_column_sums)(L * B, GH, w->Gh, w->g.b_hh);
    if (w->cell.ops->recurrent_input_grads)
        w->cell.ops->recurrent_input_grads(&w->cell, k, L * B, w->Gx, w->ws, w->g.b_ih, w->g.w_hh,
                                           w->g.b_hh);
}

/* Whether every element of the window gradient w->g is finite (the stop
 * rule of fastrnn.h), and with FRNN_CLIP_VALUE the clip, in the same pass:
 * a gradient found not finite is discarded, so that it was partly clipped
 * first changes nothing anyone sees (elementwise, parameter by parameter:
 * the bits of a clip over the flat vector). With index input the weight_ih
 * gradient is zero except in the columns the window looked up
 * (layer_weight_grads), so only those are read and clipped: wildml's
 * 8000-word vocabulary made the rest 3.2 MB of zeros read per call. */
static int FN(check_window)(const frnn_train_config *cfg, const FN(window) *w, frnn_int s,
                            frnn_int L, const int64_t *idx) {
    const FN(frnn_kernel_table) *k = w->k;
    const frnn_int B = cfg->B, In = cfg->In, GH = w->cell.GH;
    const int by_value = cfg->clip == FRNN_CLIP_VALUE;
    const real c = (real)cfg->clip_value;
    real *d[N_PARAMS];
    frnn_int n[N_PARAMS];
    FN(parts)(cfg, GH, w->g, d, n);
    int first = 0;
    if (cfg->index_input) {
        real nan_if_any = 0; /* g * 0 is NaN exactly when g is not finite (optim.c) */
        for (frnn_int r = 0; r < L * B; r++) {
            real *col = w->g.w_ih + idx[s * B + r];
            for (frnn_int gi = 0; gi < GH; gi++) {
                const real g = col[gi * In];
                nan_if_any += g * 0;
                /* a column looked up twice is clipped twice: the same value */
                if (by_value) col[gi * In] = g > c ? c : (g < -c ? -c : g);
            }
        }
        if (nan_if_any != 0) return 0;
        first = 1;
    }
    for (int j = first; j < N_PARAMS; j++) {
        if (!n[j]) continue;
        if (!(by_value ? k->clip_value(n[j], d[j], c) : k->all_finite(n[j], d[j]))) return 0;
    }
    return 1;
}

/* Clip the (checked) window gradient by norm, then step the optimizer, or
 * accumulate (not when the window gradient was formed in `grad` itself:
 * direct). With an optimizer, the last applied window's gw is copied to
 * `grad` once, by the caller, after the last window. */
static void FN(finish_window)(const frnn_train_config *cfg, FN(window) *w, frnn_int P,
                              int direct, real *theta, FN(params) grad, real *m, real *v,
                              int64_t *step) {
    FN(clip_norm)(w->k, cfg, P, w->gw);
    if (cfg->opt == FRNN_OPT_NONE) {
        if (!direct) FN(add_params)(cfg, w->cell.GH, grad, w->g);
    } else {
        *step += 1;
        FN(optimizer_step)(w->k, cfg, P, theta, w->gw, m, v, *step);
    }
}

/* Input projection of steps [s, s+L) into w->xp (weights change every update). */
static void FN(project_window)(const frnn_train_config *cfg, FN(window) *w, frnn_int s,
                               frnn_int L, const real *x, const int64_t *idx) {
    const frnn_int B = cfg->B, In = cfg->In, GH = w->cell.GH;
    if (cfg->index_input) {
        for (frnn_int r = 0; r < L * B; r++) {
            const int64_t col = idx[s * B + r];
            real *row = w->xp + r * GH;
            for (frnn_int gi = 0; gi < GH; gi++) row[gi] = w->b_ih[gi] + w->p.w_ih[gi * In + col];
        }
    } else {
        FN(frnn_pack_transposed)(w->k, GH, In, w->p.w_ih, w->w_ih_tp);
        FN(frnn_project_inputs)(w->k, L * B, In, GH, x + s * B * In, w->w_ih_tp, w->b_ih, w->xp);
    }
}

/* Whether some row resets its state before step t (resets given). */
static int FN(any_reset)(const FN(window) *w, frnn_int B, frnn_int t) {
    const uint8_t *r = w->resets + t * B;
    for (frnn_int b = 0; b < B; b++)
        if (r[b]) return 1;
    return 0;
}

/* The first step after u (< end) where some row resets, or end. */
static frnn_int FN(segment_end)(const FN(window) *w, frnn_int B, frnn_int u, frnn_int end) {
    frnn_int v = u + 1;
    while (v < end && !FN(any_reset)(w, B, v)) v++;
    return v;
}

/* Zero the rows of a [B, H] state that reset before step t. */
static void FN(zero_reset_rows)(const FN(window) *w, frnn_int B, frnn_int H, frnn_int t,
                                real *state) {
    const uint8_t *r = w->resets + t * B;
    for (frnn_int b = 0; b < B; b++)
        if (r[b]) memset(state + b * H, 0, sizeof(real) * (size_t)H);
}

/* The cell state entering step t of the window starting at s (c_start at
 * s, else the c_t block of ws[t-1]) into c_seg, its reset rows zeroed. */
static void FN(gather_c_prev)(const FN(window) *w, frnn_int s, frnn_int t, frnn_int B,
                              frnn_int H, const real *c_start, real *c_seg) {
    const frnn_int Wd = w->cell.W, c_at = (frnn_int)w->cell.ops->cell_state_offset * H;
    for (frnn_int b = 0; b < B; b++)
        memcpy(c_seg + b * H, t == s ? c_start + b * H : w->ws + ((t - 1 - s) * B + b) * Wd + c_at,
               sizeof(real) * (size_t)H);
    FN(zero_reset_rows)(w, B, H, t, c_seg);
}

/* The forward over the window [s, s+L) from h_start and c_run (the carried
 * state; c_run ends as c at s+L). Without resets one call of the cell's
 * loop; with them one per segment, each from h_prev[u - s] = the state
 * entering step u with its reset rows zeroed (c_run's rows zeroed in
 * place), and h_prev filled for every step (the weight gradients use it). */
static void FN(window_forward)(const frnn_train_config *cfg, FN(window) *w, frnn_int s,
                               frnn_int L, const real *h_start, real *c_run) {
    const FN(frnn_cell_ops) *ops = w->cell.ops;
    const frnn_int B = cfg->B, H = cfg->H, GH = w->cell.GH, Wd = w->cell.W;
    if (!w->resets) {
        ops->steps(&w->cell, w->k, L, B, w->xp, w->w_hh_tp, w->b_hh, h_start, c_run, w->out,
                   w->ws, w->cell_scratch);
        return;
    }
    const size_t rowH = sizeof(real) * (size_t)(B * H);
    for (frnn_int u = s; u < s + L;) {
        const frnn_int v = FN(segment_end)(w, B, u, s + L), i = u - s;
        real *hp = w->h_prev + i * B * H;
        memcpy(hp, u == s ? h_start : w->out + (i - 1) * B * H, rowH);
        FN(zero_reset_rows)(w, B, H, u, hp);
        if (ops->has_cell_state) FN(zero_reset_rows)(w, B, H, u, c_run);
        ops->steps(&w->cell, w->k, v - u, B, w->xp + i * B * GH, w->w_hh_tp, w->b_hh, hp, c_run,
                   w->out + i * B * H, w->ws + i * B * Wd, w->cell_scratch);
        for (frnn_int j = i + 1; j < v - s; j++) /* no resets inside a segment */
            memcpy(w->h_prev + j * B * H, w->out + (j - 1) * B * H, rowH);
        u = v;
    }
}

/* Backward through the window [s, s+L) (TBPTT): the cell's backward loop,
 * per segment from the last to the first with resets, the gradient into a
 * reset row's (zero) entering state dropped. dh, dc: [B, H] scratch. */
static void FN(window_backward)(const frnn_train_config *cfg, FN(window) *w, frnn_int s,
                                frnn_int L, const real *h_start, const real *c_start, real *dh,
                                real *dc) {
    const FN(frnn_cell_ops) *ops = w->cell.ops;
    const frnn_int B = cfg->B, H = cfg->H, GH = w->cell.GH, Wd = w->cell.W;
    memset(dh, 0, sizeof(real) * (size_t)(B * H));
    memset(dc, 0, sizeof(real) * (size_t)(B * H));
    if (!w->resets) {
        ops->gate_grads(&w->cell, w->k, L, B, w->w_hh_p, h_start, c_start, w->out, w->ws,
                        w->d_out, dh, dc, w->Gx, w->Gh);
        return;
    }
    /* segment starts, walked backwards: s, then every step with a reset */
    for (frnn_int v = s + L; v > s;) {
        frnn_int u = v - 1;
        while (u > s && !FN(any_reset)(w, B, u)) u--;
        const frnn_int i = u - s;
        if (ops->has_cell_state) FN(gather_c_prev)(w, s, u, B, H, c_start, w->c_seg);
        ops->gate_grads(&w->cell, w->k, v - u, B, w->w_hh_p, w->h_prev + i * B * H, w->c_seg,
                        w->out + i * B * H, w->ws + i * B * Wd, w->d_out + i * B * H, dh, dc,
                        w->Gx + i * B * GH, w->Gh + i * B * GH);
        FN(zero_reset_rows)(w, B, H, u, dh);
        if (ops->has_cell_state) FN(zero_reset_rows)(w, B, H, u, dc);
        v = u;
    }
}

/* Per-output depth K (docs/TRAINING.md): the whole sequence is one window and
 * the loss at step t reaches steps t .. t-K only. Deltas of every age
 * a = 0..K (a = steps back from the output that caused them) are stacked as
 * (K+1) * B rows, so each step is one batched gate-gradient call: age 0 is
 * fed d_out[t], age a the age a-1 delta propagated from step t+1, and age K
 * is not propagated further. The gate gradients of all ages sum into G[t]. */
static void FN(depth_backward)(const frnn_train_config *cfg, FN(window) *w, frnn_int T,
                               frnn_int depth, const real *h0, const real *c0, real *age_buf) {
    const FN(frnn_kernel_table) *k = w->k;
    const FN(frnn_cell) *cell = &w->cell;
    const FN(frnn_cell_ops) *ops = cell->ops;
    const frnn_int B = cfg->B, H = cfg->H, GH = cell->GH, Wd = cell->W;
    const frnn_int A = depth + 1, R = A * B; /* ages, stacked rows (depth <= T - 1) */
    const int two = ops->separate_hidden_grad;
    const int reads = ops->backward_reads;
    /* what the cell's backward reads of step t (cells/cell.h), per age */
    real *ws_rep = age_buf;                                            /* [R, W] ws[t] */
    real *h_rep = ws_rep + R * Wd;                                     /* [R, H] h_t */
    real *h_prev_rep = h_rep + (reads & FRNN_READS_OUTPUT ? R * H : 0); /* [R, H] h_{t-1} */
    real *c_prev_rep = h_prev_rep + (reads & FRNN_READS_H_PREV ? R * H : 0); /* [R, H] c_{t-1} */
    real *zero = c_prev_rep + (reads & FRNN_READS_C_PREV ? R * H : 0); /* [R, H] */
    real *dh = zero + R * H;            /* [R, H] incoming, then propagated */
    real *dc = dh + R * H;              /* [R, H] */
    real *gx = dc + R * H;              /* [R, GH] */
    real *gh = two ? gx + R * GH : gx;  /* [R, GH] */
    memset(zero, 0, sizeof(real) * (size_t)(R * H));
    memset(dh, 0, sizeof(real) * (size_t)(R * H));
    memset(dc, 0, sizeof(real) * (size_t)(R * H));
    const size_t rowH = sizeof(real) * (size_t)(B * H);
    const frnn_int c_at = (frnn_int)ops->cell_state_offset * H; /* c_t in a ws row */
    for (frnn_int t = T - 1; t >= 0; t--) {
        /* ages 1..K take the propagated deltas of ages 0..K-1; age 0 d_out[t] */
        memmove(dh + B * H, dh, rowH * (size_t)(A - 1));
        memcpy(dh, w->d_out + t * B * H, rowH);
        memmove(dc + B * H, dc, rowH * (size_t)(A - 1));
        memset(dc, 0, rowH);
        const real *h_prev = w->resets ? w->h_prev + t * B * H
                             : t == 0 ? h0 : w->out + (t - 1) * B * H;
        for (frnn_int a = 0; a < A; a++) {
            if (Wd) memcpy(ws_rep + a * B * Wd, w->ws + t * B * Wd, sizeof(real) * (size_t)(B * Wd));
            if (reads & FRNN_READS_OUTPUT) memcpy(h_rep + a * B * H, w->out + t * B * H, rowH);
            if (reads & FRNN_READS_H_PREV) memcpy(h_prev_rep + a * B * H, h_prev, rowH);
            if (reads & FRNN_READS_C_PREV) {
                for (frnn_int b = 0; b < B; b++)
                    memcpy(c_prev_rep + (a * B + b) * H,
                           t == 0 ? c0 + b * H : w->ws + ((t - 1) * B + b) * Wd + c_at,
                           sizeof(real) * (size_t)H);
                if (w->resets) FN(zero_reset_rows)(w, B, H, t, c_prev_rep + a * B * H);
            }
        }
        /* one step of the cell's backward loop over the stacked rows: its
         * "initial" state is step t-1's, its output step t's */
        ops->gate_grads(cell, k, 1, R, w->w_hh_p, h_prev_rep, c_prev_rep, h_rep, ws_rep, zero, dh,
                        dc, gx, gh);
        if (w->resets) /* a reset row's entering state is zero: no age reaches past it */
            for (frnn_int a = 0; a < A; a++) {
                FN(zero_reset_rows)(w, B, H, t, dh + a * B * H);
                FN(zero_reset_rows)(w, B, H, t, dc + a * B * H);
            }
        real *Gx_t = w->Gx + t * B * GH, *Gh_t = w->Gh + t * B * GH;
        memcpy(Gx_t, gx, sizeof(real) * (size_t)(B * GH));
        for (frnn_int a = 1; a < A; a++)
            for (frnn_int i = 0; i < B * GH; i++) Gx_t[i] += gx[a * B * GH + i];
        if (two) {
            memcpy(Gh_t, gh, sizeof(real) * (size_t)(B * GH));
            for (frnn_int a = 1; a < A; a++)
                for (frnn_int i = 0; i < B * GH; i++) Gh_t[i] += gh[a * B * GH + i];
        }
    }
}

/* What frnn_train refuses before it reads or writes anything: a size < 1,
 * depth < -1, TBPTT without 1 <= k1 <= k2, an unknown cell / head / clip /
 * optimizer, an array the configuration needs passed as NULL (have_params:
 * the entry point found every parameter and gradient array it needs; frnn_train
 * adds: a step count that is negative or would pass INT64_MAX), or an index
 * input / class target outside [0, In) / [0, O) (one pass over each; the
 * lookup and the scatter-add would otherwise read and write outside W_ih, and
 * the softmax outside its row). */
static int FN(valid_config)(const frnn_train_config *cfg, const FN(frnn_cell) *cell,
                            int have_params, const real *m, const real *v, const int64_t *step, const real *x,
                            const int64_t *idx, const int64_t *target_idx, const real *target,
                            const real *h, const real *c, const double *losses) {
    if (cfg->T < 1 || cfg->B < 1 || cfg->In < 1 ||
        cfg->H < 1 || cfg->O < 1 || cfg->depth < -1 ||
        (cfg->depth < 0 && (cfg->k1 < 1 || cfg->k2 < cfg->k1)) || (int)cfg->head < 0 ||
        (int)cfg->head > 3 || (int)cfg->clip < 0 || (int)cfg->clip > 2 || (int)cfg->opt < 0 ||
        (int)cfg->opt > 4)
        return 0;
    const int uses_m = (cfg->opt == FRNN_OPT_SGD && cfg->momentum != 0) ||
                       cfg->opt == FRNN_OPT_ADAGRAD || cfg->opt == FRNN_OPT_ADAM;
    const int uses_v = cfg->opt == FRNN_OPT_RMSPROP || cfg->opt == FRNN_OPT_ADAM;
    if (!have_params || !step || !h || !losses || (uses_m && !m) || (uses_v && !v) ||
        (cfg->index_input ? !idx : !x) ||
        (cfg->head == FRNN_HEAD_SOFTMAX_CE ? !target_idx : !target) ||
        (cell->ops->has_cell_state && !c))
        return 0;
    const frnn_int T = cfg->T, B = cfg->B; /* T * B fits: frnn_check_layer ran first */
    if (cfg->index_input)
        for (frnn_int i = 0; i < T * B; i++)
            if (idx[i] < 0 || idx[i] >= cfg->In) return 0;
    if (cfg->head == FRNN_HEAD_SOFTMAX_CE) {
        const frnn_int n = cfg->many_to_one ? B : T * B;
        for (frnn_int i = 0; i < n; i++)
            if (target_idx[i] < 0 || target_idx[i] >= cfg->O) return 0;
    }
    return 1;
}

/* Whether the separate arrays of frnn_train_grads hold every parameter the
 * configuration has (absent biases may be anything: they are not read). */
static int FN(have_weights)(const frnn_train_config *cfg, FN(weights) p) {
    return p.w_ih && p.w_hh && p.w_hy && (!cfg->has_bias || p.b_ih) &&
           (!cfg->has_bias || cfg->no_bias_hh || p.b_hh) && (!cfg->has_head_bias || p.b_y);
}

/* The trainer behind both entry points: theta and grad flat (frnn_train),
 * or theta NULL and the parameters and their gradients in the caller's
 * separate arrays `given` / `given_grads` (frnn_train_grads, FRNN_OPT_NONE
 * only). Past the set-up the two run the same code on the same values. */
static int FN(train_run)(const frnn_train_config *cfg, real *theta, real *grad,
                         const FN(weights) *given, const FN(params) *given_grads, real *m,
                         real *v, int64_t *step, const real *x, const int64_t *idx,
                         const int64_t *target_idx, const real *target, const uint8_t *resets,
                         real *h, real *c, double *losses, int64_t *stopped_window) {
    if (stopped_window) *stopped_window = -1;
    FN(window) w;
    /* the cell and the sizes first (so that T * B and friends may be
     * formed), then the rest of the configuration */
    const frnn_cell_desc desc = {cfg->cell, cfg->H, cfg->leak_rate};
    const int layer_ok = FN(frnn_layer_cell)(&desc, cfg->T, cfg->B, cfg->In, &w.cell);
    if (layer_ok != FRNN_OK) return layer_ok;
    const int have_params = given ? cfg->opt == FRNN_OPT_NONE && FN(have_weights)(cfg, *given) &&
                                        FN(have_weights)(cfg, FN(read_only)(*given_grads))
                                  : theta && grad;
    if (!FN(valid_config)(cfg, &w.cell, have_params, m, v, step, x, idx, target_idx, target, h,
                          c, losses))
        return FRNN_ERR_UNSUPPORTED;
    const int by_depth = cfg->depth >= 0;
    w.k = FN(frnn_active)();
    const FN(frnn_kernel_table) *k = w.k;
    const frnn_int T = cfg->T, B = cfg->B, In = cfg->In, H = cfg->H, O = cfg->O;
    const frnn_int GH = w.cell.GH, Wd = w.cell.W;
    /* A depth of T - 1 already reaches every step back to the first, and a
     * k1 or k2 beyond T means T: the same gradients, and sizes that fit. */
    const frnn_int depth = by_depth ? (cfg->depth < T - 1 ? cfg->depth : T - 1) : -1;
    const frnn_int k1 = by_depth ? T : (cfg->k1 < T ? cfg->k1 : T);
    const frnn_int k2 = by_depth ? T : (cfg->k2 < T ? cfg->k2 : T);
    /* The update count must stay countable: one more per window at most. */
    const frnn_int windows = (T + k1 - 1) / k1;
    if (cfg->opt != FRNN_OPT_NONE && (*step < 0 || *step > INT64_MAX - windows))
        return FRNN_ERR_UNSUPPORTED;
    const frnn_int W = k2; /* the longest window */
    const frnn_int P = param_count(cfg, GH);
    /* Gradients only, from a single window (per-output depth, many-to-one,
     * or one TBPTT window): that window's gradient is the result, so it is
     * formed where the caller wants it, with no window buffer to zero, sum
     * and copy (wildml's bptt: 6.4 MB written once instead of three times).
     * Clipping by norm keeps the flat buffer, whose squares it sums in
     * theta's order. */
    const int direct = cfg->opt == FRNN_OPT_NONE && cfg->clip != FRNN_CLIP_NORM &&
                       (by_depth || cfg->many_to_one || windows == 1);
    const FN(frnn_cell_ops) *ops = w.cell.ops;
    const int state = ops->has_cell_state, two = ops->separate_hidden_grad;
    const int reads = ops->backward_reads;
    /* depth_backward's rows per age: ws, what the cell's backward reads of
     * steps t and t-1, zero, dh, dc (units of H), and the gate gradients */
    const int gathered = !!(reads & FRNN_READS_OUTPUT) + !!(reads & FRNN_READS_H_PREV) +
                         !!(reads & FRNN_READS_C_PREV);
    const frnn_int age_row = frnn_size_add(frnn_size_add(Wd, frnn_size_mul(3 + gathered, H)),
                                           frnn_size_mul(1 + two, GH));
    const frnn_int loss_rows_max = cfg->many_to_one ? B : frnn_size_mul(W, B);
    const frnn_int R = by_depth ? frnn_size_mul(depth + 1, B) : 0; /* stacked age rows */
    const frnn_int WB = frnn_size_mul(W, B), BH = frnn_size_mul(B, H);

    const frnn_int sizes[] = {
        direct ? 0 : frnn_size_mul(2, P),    /* gw: two window gradients (the last applied one survives a stop) */
        frnn_size_mul(WB, GH),               /* xp */
        frnn_size_mul(WB, H),                /* out */
        frnn_size_mul(WB, Wd),               /* ws */
        frnn_size_mul(1 + two, frnn_size_mul(WB, GH)), /* Gx (, Gh) */
        frnn_size_mul(WB, H),                /* d_out */
        frnn_size_mul(loss_rows_max, O),     /* z / dz */
        FN(frnn_recurrent_packed_size)(&w.cell, k), /* W_hh^T packed */
        FN(frnn_packed_elems)(k, GH, H),     /* W_hh packed */
        cfg->index_input ? 0 : FN(frnn_packed_elems)(k, In, GH), /* W_ih^T packed */
        FN(frnn_packed_elems)(k, H, O),      /* W_hy^T packed */
        frnn_size_mul(4, BH),                /* c_run, carried h and c, dh */
        BH,                                  /* dc */
        resets ? frnn_size_mul(WB, H) : 0,   /* h_prev: the state entering each step */
        resets ? BH : 0,                     /* c_seg */
        frnn_size_mul(2, GH),                /* zero biases */
        FN(frnn_cell_scratch)(&w.cell, R > B ? R : B), /* cell_scratch: batch or stacked ages */
        frnn_size_mul(R, age_row),           /* depth: age_buf */
    };
    frnn_int total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total = frnn_size_add(total, sizes[i]);
    size_t bytes;
    /* the targets [T, B, O] of mse / bce are not allocated here, but indexed */
    if (cfg->head != FRNN_HEAD_SOFTMAX_CE &&
        frnn_size_bytes(frnn_size_mul3(T, B, O), sizeof(real), &bytes))
        return FRNN_ERR_TOO_LARGE;
    if (frnn_size_bytes(total, sizeof(real), &bytes)) return FRNN_ERR_TOO_LARGE;
    real *scratch = frnn_scratch_acquire(bytes);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *gw_buf[2] = {scratch, scratch + P}; /* unused when direct */
    w.xp = scratch + (direct ? 0 : 2 * P);
    w.out = w.xp + W * B * GH;
    w.ws = w.out + W * B * H;
    w.Gx = w.ws + W * B * Wd;
    w.Gh = two ? w.Gx + W * B * GH : w.Gx;
    w.d_out = w.Gx + (1 + two) * W * B * GH;
    w.zdz = w.d_out + W * B * H;
    w.w_hh_tp = w.zdz + loss_rows_max * O;
    w.w_hh_p = w.w_hh_tp + FN(frnn_recurrent_packed_size)(&w.cell, k);
    w.w_ih_tp = w.w_hh_p + k->packed_size(GH, H);
    w.w_hy_tp = w.w_ih_tp + (cfg->index_input ? 0 : k->packed_size(In, GH));
    real *c_run = w.w_hy_tp + k->packed_size(H, O), *h_carry = c_run + B * H;
    real *c_carry = h_carry + B * H, *dh = c_carry + B * H, *dc = dh + B * H;
    w.h_prev = resets ? dc + B * H : NULL;
    w.c_seg = resets ? w.h_prev + W * B * H : NULL;
    real *zeros = dc + B * H + (resets ? W * B * H + B * H : 0);
    w.cell_scratch = zeros + 2 * GH;
    real *age_buf = w.cell_scratch + FN(frnn_cell_scratch)(&w.cell, R > B ? R : B);
    memset(zeros, 0, sizeof(real) * (size_t)(2 * GH));

    w.resets = resets;
    if (resets) { /* all-false resets are no resets: the plain path, bitwise */
        frnn_int i = 0;
        while (i < T * B && !resets[i]) i++;
        if (i == T * B) w.resets = NULL;
    }
    FN(params) grads; /* where the gradient goes (FRNN_OPT_NONE: the sum of the windows') */
    if (theta) {
        w.p = FN(read_only)(FN(split)(cfg, GH, theta));
        grads = FN(split)(cfg, GH, grad);
    } else { /* the caller's arrays; an absent bias is NULL whatever was passed */
        w.p = *given, grads = *given_grads;
        if (!cfg->has_bias) w.p.b_ih = grads.b_ih = NULL;
        if (!cfg->has_bias || cfg->no_bias_hh) w.p.b_hh = grads.b_hh = NULL;
        if (!cfg->has_head_bias) w.p.b_y = grads.b_y = NULL;
    }
    w.b_ih = w.p.b_ih ? w.p.b_ih : zeros;
    w.b_hh = w.p.b_hh ? w.p.b_hh : zeros + GH;
    memcpy(h_carry, h, sizeof(real) * (size_t)(B * H));
    if (state) memcpy(c_carry, c, sizeof(real) * (size_t)(B * H));
    if (cfg->opt == FRNN_OPT_NONE && !direct) FN(zero_params)(cfg, GH, grads);

    /* Per-output depth: one window, the whole sequence. TBPTT(k1, k2): windows
     * ending every k1 steps, each reaching back k2 steps. Window gradients
     * alternate between the two gw buffers, so the last applied one is still
     * there when a window has to be refused. */
    const real *applied = NULL; /* the last applied window's clipped gradient */
    int rc = FRNN_OK, current = 0;
    frnn_int n = 0;
    for (frnn_int t_prev = 0; t_prev < T; n++) {
        const frnn_int t = t_prev + k1 < T ? t_prev + k1 : T;
        const frnn_int s = t - k2 > 0 ? t - k2 : 0, L = t - s;
        const frnn_int t_next = t + k1 < T ? t + k1 : T;
        const frnn_int s_next = t_next - k2 > 0 ? t_next - k2 : 0;

        /* forward over the window from the carried state */
        FN(project_window)(cfg, &w, s, L, x, idx);
        FN(frnn_pack_recurrent)(&w.cell, k, w.p.w_hh, w.w_hh_tp);
        if (state) memcpy(c_run, c_carry, sizeof(real) * (size_t)(B * H));
        FN(window_forward)(cfg, &w, s, L, h_carry, c_run);

        /* loss, backward through the window (never into the carried state),
         * clip, update */
        double loss = 0;
        if (!cfg->many_to_one || t == T) {
            w.gw = direct ? NULL : gw_buf[current];
            w.g = direct ? grads : FN(split)(cfg, GH, w.gw);
            const frnn_int first = cfg->many_to_one ? T - 1 : t_prev;
            loss = FN(head_step)(cfg, &w, s, L, first, t, target_idx, target);
            FN(frnn_pack)(k, GH, H, w.p.w_hh, w.w_hh_p);
            if (by_depth) {
                FN(depth_backward)(cfg, &w, T, depth, h_carry, c_carry, age_buf);
            } else {
                FN(window_backward)(cfg, &w, s, L, h_carry, c_carry, dh, dc);
            }
            FN(layer_weight_grads)(cfg, &w, s, L, x, idx, h_carry);
            /* A window whose loss or unclipped gradient is not finite stops
             * the run before it changes anything: theta, m, v, step and
             * grad stay as the previous window left them, h and c as passed
             * in (docs/TRAINING.md). */
            if (!isfinite(loss) || !FN(check_window)(cfg, &w, s, L, idx)) {
                /* direct: grad is the sum over no applied window */
                if (direct) FN(zero_params)(cfg, GH, grads);
                losses[n] = loss;
                if (stopped_window) *stopped_window = n;
                rc = FRNN_ERR_NONFINITE;
                break;
            }
            FN(finish_window)(cfg, &w, P, direct, theta, grads, m, v, step);
            applied = w.gw;
            current ^= 1;
        }
        losses[n] = loss;

        /* carry: the state this forward reached at s_next (or at T) */
        if (t == T) {
            memcpy(h, w.out + (L - 1) * B * H, sizeof(real) * (size_t)(B * H));
            if (state) memcpy(c, c_run, sizeof(real) * (size_t)(B * H));
        } else if (s_next > s) {
            const frnn_int o = s_next - s - 1; /* the step whose output is h_{s_next} */
            memcpy(h_carry, w.out + o * B * H, sizeof(real) * (size_t)(B * H));
            if (state) /* c at s_next: its block of that step's workspace */
                for (frnn_int b = 0; b < B; b++)
                    memcpy(c_carry + b * H,
                           w.ws + (o * B + b) * Wd + (frnn_int)ops->cell_state_offset * H,
                           sizeof(real) * (size_t)H);
        }
        t_prev = t;
    }
    if (cfg->opt != FRNN_OPT_NONE) {
        if (applied) memcpy(grad, applied, sizeof(real) * (size_t)P);
        else memset(grad, 0, sizeof(real) * (size_t)P);
    }
    frnn_scratch_release(scratch);
    return rc;
}

int FN(frnn_train)(const frnn_train_config *cfg, real *theta, real *grad, real *m, real *v,
                   int64_t *step, const real *x, const int64_t *idx,
                   const int64_t *target_idx, const real *target, const uint8_t *resets,
                   real *h, real *c, double *losses, int64_t *stopped_window) {
    return FN(train_run)(cfg, theta, grad, NULL, NULL, m, v, step, x, idx, target_idx, target,
                         resets, h, c, losses, stopped_window);
}

int FN(frnn_train_grads)(const frnn_train_config *cfg, const real *w_ih, const real *w_hh,
                         const real *b_ih, const real *b_hh, const real *w_hy, const real *b_y,
                         real *g_w_ih, real *g_w_hh, real *g_b_ih, real *g_b_hh, real *g_w_hy,
                         real *g_b_y, const real *x, const int64_t *idx,
                         const int64_t *target_idx, const real *target, const uint8_t *resets,
                         real *h, real *c, double *losses, int64_t *stopped_window) {
    const FN(weights) given = {w_ih, w_hh, b_ih, b_hh, w_hy, b_y};
    const FN(params) given_grads = {g_w_ih, g_w_hh, g_b_ih, g_b_hh, g_w_hy, g_b_y};
    int64_t step = 0; /* no optimizer: never counted */
    return FN(train_run)(cfg, NULL, NULL, &given, &given_grads, NULL, NULL, &step, x, idx,
                         target_idx, target, resets, h, c, losses, stopped_window);
}
