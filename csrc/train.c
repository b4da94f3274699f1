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
 * Not here (yet): per-output depth-k truncation (the NumPy reference has
 * it); threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

/* Where each parameter lives in a flat vector (theta, grad, m, v). */
typedef struct {
    real *w_ih, *w_hh, *b_ih, *b_hh, *w_hy, *b_y; /* biases NULL when absent */
} FN(params);

static frnn_int param_count(const frnn_train_config *cfg, frnn_int GH) {
    return GH * cfg->In + GH * cfg->H + (cfg->has_bias ? 2 * GH : 0) + cfg->O * cfg->H +
           (cfg->has_head_bias ? cfg->O : 0);
}

static FN(params) FN(split)(const frnn_train_config *cfg, frnn_int GH, real *flat) {
    FN(params) p;
    p.w_ih = flat;
    p.w_hh = p.w_ih + GH * cfg->In;
    real *next = p.w_hh + GH * cfg->H;
    p.b_ih = cfg->has_bias ? next : NULL;
    p.b_hh = cfg->has_bias ? next + GH : NULL;
    p.w_hy = cfg->has_bias ? next + 2 * GH : next;
    p.b_y = cfg->has_head_bias ? p.w_hy + cfg->O * cfg->H : NULL;
    return p;
}

/* The head over `rows` hidden states: z = h W_hy^T + b_y, the loss terms and
 * dz = dl/dz * scale. Returns the summed (unscaled) loss. z_dz: [rows, O]. */
static double FN(head_loss)(const frnn_train_config *cfg, frnn_int rows, const int64_t *tidx,
                            const real *tval, real scale, real *z_dz) {
    const frnn_int O = cfg->O;
    double loss = 0;
    for (frnn_int r = 0; r < rows; r++) {
        real *z = z_dz + r * O;
        switch (cfg->head) {
        case FRNN_HEAD_SOFTMAX_CE: {
            real zmax = z[0];
            for (frnn_int o = 1; o < O; o++) zmax = z[o] > zmax ? z[o] : zmax;
            double sum = 0;
            for (frnn_int o = 0; o < O; o++) sum += exp((double)(z[o] - zmax));
            const frnn_int y = (frnn_int)tidx[r];
            loss += log(sum) + (double)zmax - (double)z[y];
            for (frnn_int o = 0; o < O; o++) z[o] = (real)(exp((double)(z[o] - zmax)) / sum) * scale;
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

static void FN(clip)(const frnn_train_config *cfg, frnn_int P, real *g) {
    if (cfg->clip == FRNN_CLIP_VALUE) {
        const real c = (real)cfg->clip_value;
        for (frnn_int i = 0; i < P; i++) g[i] = g[i] > c ? c : (g[i] < -c ? -c : g[i]);
    } else if (cfg->clip == FRNN_CLIP_NORM) {
        double sq = 0;
        for (frnn_int i = 0; i < P; i++) sq += (double)g[i] * (double)g[i];
        const double norm = sqrt(sq);
        if (norm > cfg->clip_value) {
            const real coef = (real)(cfg->clip_value / (norm + 1e-6));
            for (frnn_int i = 0; i < P; i++) g[i] *= coef;
        }
    }
}

static void FN(optimizer_step)(const frnn_train_config *cfg, frnn_int P, real *theta,
                               const real *g, real *m, real *v, int64_t step) {
    const real lr = (real)cfg->lr, eps = (real)cfg->eps;
    switch (cfg->opt) {
    case FRNN_OPT_SGD: {
        const real mu = (real)cfg->momentum;
        if (mu == 0) {
            for (frnn_int i = 0; i < P; i++) theta[i] -= lr * g[i];
            break;
        }
        for (frnn_int i = 0; i < P; i++) {
            m[i] = mu * m[i] + g[i];
            theta[i] -= lr * (cfg->nesterov ? g[i] + mu * m[i] : m[i]);
        }
        break;
    }
    case FRNN_OPT_ADAGRAD:
        for (frnn_int i = 0; i < P; i++) {
            m[i] += g[i] * g[i];
            theta[i] -= lr * g[i] / (real)sqrt((double)(m[i] + eps));
        }
        break;
    case FRNN_OPT_RMSPROP: {
        const real a = (real)cfg->alpha;
        for (frnn_int i = 0; i < P; i++) {
            v[i] = a * v[i] + (1 - a) * g[i] * g[i];
            theta[i] -= lr * g[i] / ((real)sqrt((double)v[i]) + eps);
        }
        break;
    }
    case FRNN_OPT_ADAM: {
        const real b1 = (real)cfg->beta1, b2 = (real)cfg->beta2;
        const real c1 = (real)(1 - pow(cfg->beta1, (double)step));
        const real c2 = (real)(1 - pow(cfg->beta2, (double)step));
        for (frnn_int i = 0; i < P; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            theta[i] -= lr * (m[i] / c1) / ((real)sqrt((double)(v[i] / c2)) + eps);
        }
        break;
    }
    default: break;
    }
}

int FN(frnn_train)(const frnn_train_config *cfg, real *theta, real *grad, real *m, real *v,
                   int64_t *step, const real *x, const int64_t *idx,
                   const int64_t *target_idx, const real *target, real *h, real *c,
                   double *losses) {
    static const frnn_kind kinds[] = {FRNN_KIND_RNN, FRNN_KIND_RNN, FRNN_KIND_RNN,
                                      FRNN_KIND_LSTM, FRNN_KIND_GRU};
    static const frnn_activation acts[] = {FRNN_ACT_TANH, FRNN_ACT_RELU, FRNN_ACT_SIGMOID,
                                           FRNN_ACT_TANH, FRNN_ACT_TANH};
    if ((int)cfg->cell < 0 || (int)cfg->cell > 4 || cfg->k1 < 1 || cfg->k2 < cfg->k1)
        return FRNN_ERR_UNSUPPORTED;
    const frnn_cell cell = frnn_make_cell(kinds[cfg->cell], acts[cfg->cell], cfg->H);
    const FN(frnn_kernel_table) *k = FN(frnn_active)();
    const frnn_int T = cfg->T, B = cfg->B, In = cfg->In, H = cfg->H, O = cfg->O;
    const frnn_int GH = cell.GH, W = cfg->k2 < T ? cfg->k2 : T;
    const frnn_int P = param_count(cfg, GH);
    const int lstm = cell.kind == FRNN_KIND_LSTM, two = cell.kind == FRNN_KIND_GRU;
    const frnn_int loss_rows_max = cfg->many_to_one ? B : W * B;

    const frnn_int sizes[] = {
        P,                                   /* gw: this window's gradient */
        W * B * GH,                          /* xp */
        W * B * H,                           /* out */
        W * B * cell.W,                      /* ws */
        (1 + two) * W * B * GH,              /* Gx (, Gh) */
        W * B * H,                           /* d_out */
        loss_rows_max * O,                   /* z / dz */
        k->packed_size(H, GH),               /* W_hh^T packed */
        k->packed_size(GH, H),               /* W_hh packed */
        cfg->index_input ? 0 : k->packed_size(In, GH), /* W_ih^T packed */
        k->packed_size(H, O),                /* W_hy^T packed */
        4 * B * H,                           /* c_run, carried h and c, dh */
        B * H,                               /* dc */
        2 * GH,                              /* zero biases */
        frnn_cell_scratch(&cell, B),
    };
    frnn_int total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    real *scratch = frnn_alloc(sizeof(real) * (size_t)total);
    if (!scratch) return FRNN_ERR_NOMEM;
    real *gw = scratch, *xp = gw + P, *out = xp + W * B * GH, *ws = out + W * B * H;
    real *Gx = ws + W * B * cell.W, *Gh = two ? Gx + W * B * GH : Gx;
    real *d_out = Gx + (1 + two) * W * B * GH, *zdz = d_out + W * B * H;
    real *w_hh_tp = zdz + loss_rows_max * O, *w_hh_p = w_hh_tp + k->packed_size(H, GH);
    real *w_ih_tp = w_hh_p + k->packed_size(GH, H);
    real *w_hy_tp = w_ih_tp + (cfg->index_input ? 0 : k->packed_size(In, GH));
    real *c_run = w_hy_tp + k->packed_size(H, O), *h_carry = c_run + B * H;
    real *c_carry = h_carry + B * H, *dh = c_carry + B * H, *dc = dh + B * H;
    real *zeros = dc + B * H, *cell_scratch = zeros + 2 * GH;
    memset(zeros, 0, sizeof(real) * (size_t)(2 * GH));

    const FN(params) p = FN(split)(cfg, GH, theta), g = FN(split)(cfg, GH, gw);
    const real *b_ih = p.b_ih ? p.b_ih : zeros, *b_hh = p.b_hh ? p.b_hh : zeros + GH;
    memcpy(h_carry, h, sizeof(real) * (size_t)(B * H));
    if (lstm) memcpy(c_carry, c, sizeof(real) * (size_t)(B * H));
    if (cfg->opt == FRNN_OPT_NONE) memset(grad, 0, sizeof(real) * (size_t)P);

    frnn_int n = 0;
    for (frnn_int t_prev = 0; t_prev < T; n++) {
        const frnn_int t = t_prev + cfg->k1 < T ? t_prev + cfg->k1 : T;
        const frnn_int s = t - cfg->k2 > 0 ? t - cfg->k2 : 0, L = t - s;
        const frnn_int t_next = t + cfg->k1 < T ? t + cfg->k1 : T;
        const frnn_int s_next = t_next - cfg->k2 > 0 ? t_next - cfg->k2 : 0;

        /* 1. input projection of the window (weights change every update) */
        if (cfg->index_input) {
            for (frnn_int r = 0; r < L * B; r++) {
                const int64_t col = idx[s * B + r];
                real *row = xp + r * GH;
                for (frnn_int gi = 0; gi < GH; gi++) row[gi] = b_ih[gi] + p.w_ih[gi * In + col];
            }
        } else {
            FN(frnn_pack_transposed)(k, GH, In, p.w_ih, w_ih_tp);
            FN(frnn_project_inputs)(L * B, In, GH, x + s * B * In, w_ih_tp, b_ih, xp);
        }
        /* 2. forward from the carried state */
        FN(frnn_pack_transposed)(k, GH, H, p.w_hh, w_hh_tp);
        if (lstm) memcpy(c_run, c_carry, sizeof(real) * (size_t)(B * H));
        FN(frnn_cell_steps)(&cell, k, L, B, xp, w_hh_tp, b_hh, h_carry, c_run, out, ws,
                            cell_scratch);

        /* 3. head and loss over the window's loss steps */
        const int has_loss = !cfg->many_to_one || t == T;
        double loss = 0;
        if (has_loss) {
            const frnn_int first = cfg->many_to_one ? T - 1 : t_prev; /* first loss step */
            const frnn_int rows = (t - first) * B;
            const real *h_rows = out + (first - s) * B * H;
            const frnn_int terms = cfg->head == FRNN_HEAD_SOFTMAX_CE ? rows : rows * O;
            const real scale = cfg->reduce_mean ? (real)1 / (real)terms : (real)1;
            FN(frnn_pack_transposed)(k, O, H, p.w_hy, w_hy_tp);
            for (frnn_int r = 0; r < rows; r++) {
                if (p.b_y) memcpy(zdz + r * O, p.b_y, sizeof(real) * (size_t)O);
                else memset(zdz + r * O, 0, sizeof(real) * (size_t)O);
            }
            k->gemm_nn_packed(rows, O, H, h_rows, H, w_hy_tp, 1, zdz, O);
            const int64_t *tidx = target_idx ? target_idx + (cfg->many_to_one ? 0 : first * B) : NULL;
            const real *tval = target ? target + (cfg->many_to_one ? 0 : first * B * O) : NULL;
            loss = FN(head_loss)(cfg, rows, tidx, tval, scale, zdz);
            if (cfg->reduce_mean) loss /= (double)terms;

            /* 4. head gradients and the gradient into the window's outputs */
            k->gemm_tn(O, H, rows, zdz, O, h_rows, H, 0, g.w_hy, H);
            if (g.b_y) FN(frnn_column_sums)(rows, O, zdz, g.b_y);
            memset(d_out, 0, sizeof(real) * (size_t)(L * B * H));
            k->gemm_nn(rows, H, O, zdz, O, p.w_hy, H, 0, d_out + (first - s) * B * H, H);

            /* 5. backward through the window, never into the carried state */
            FN(frnn_pack)(k, GH, H, p.w_hh, w_hh_p);
            memset(dh, 0, sizeof(real) * (size_t)(B * H));
            memset(dc, 0, sizeof(real) * (size_t)(B * H));
            FN(frnn_cell_gate_grads)(&cell, k, L, B, w_hh_p, h_carry, c_carry, out, ws, d_out,
                                     dh, dc, Gx, Gh, cell_scratch);
            if (cfg->index_input) {
                memset(g.w_ih, 0, sizeof(real) * (size_t)(GH * In));
                for (frnn_int r = 0; r < L * B; r++) {
                    const int64_t col = idx[s * B + r];
                    const real *gr = Gx + r * GH;
                    for (frnn_int gi = 0; gi < GH; gi++) g.w_ih[gi * In + col] += gr[gi];
                }
            } else {
                k->gemm_tn(GH, In, L * B, Gx, GH, x + s * B * In, In, 0, g.w_ih, In);
            }
            k->gemm_tn(GH, H, B, Gh, GH, h_carry, H, 0, g.w_hh, H);
            if (L > 1) k->gemm_tn(GH, H, (L - 1) * B, Gh + B * GH, GH, out, H, 1, g.w_hh, H);
            if (g.b_ih) {
                FN(frnn_column_sums)(L * B, GH, Gx, g.b_ih);
                FN(frnn_column_sums)(L * B, GH, Gh, g.b_hh);
            }

            /* 6. clip, then update (or accumulate the gradient) */
            FN(clip)(cfg, P, gw);
            if (cfg->opt == FRNN_OPT_NONE) {
                for (frnn_int i = 0; i < P; i++) grad[i] += gw[i];
            } else {
                memcpy(grad, gw, sizeof(real) * (size_t)P);
                *step += 1;
                FN(optimizer_step)(cfg, P, theta, gw, m, v, *step);
            }
        }
        losses[n] = loss;

        /* 7. carry: the state this forward reached at s_next (or at T) */
        if (t == T) {
            memcpy(h, out + (L - 1) * B * H, sizeof(real) * (size_t)(B * H));
            if (lstm) memcpy(c, c_run, sizeof(real) * (size_t)(B * H));
        } else if (s_next > s) {
            const frnn_int o = s_next - s - 1; /* step index whose output is h_{s_next} */
            memcpy(h_carry, out + o * B * H, sizeof(real) * (size_t)(B * H));
            if (lstm)
                for (frnn_int b = 0; b < B; b++)
                    memcpy(c_carry + b * H, ws + (o * B + b) * cell.W + 4 * H,
                           sizeof(real) * (size_t)H);
        }
        t_prev = t;
    }
    free(scratch);
    return FRNN_OK;
}
