# Declarations of csrc/include/fastrnn.h for Cython. See that header for the
# meaning and shape of every argument.
from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "fastrnn.h" nogil:
    ctypedef int64_t frnn_int
    enum:
        FRNN_OK
        FRNN_ERR_NOMEM
        FRNN_ERR_UNSUPPORTED
        FRNN_ERR_TOO_LARGE
        FRNN_ERR_NONFINITE

    const char *frnn_select_isa(const char *request)
    const char *frnn_active_isa()
    void frnn_set_num_threads(int n)
    int frnn_get_num_threads()
    void frnn_set_thread_min_flops(double flops)
    void frnn_release_scratch()
    void frnn_set_flush_subnormals(int flush)
    int frnn_get_flush_subnormals()
    int frnn_fpenv_can_flush()
    uint64_t frnn_fpenv_enter()
    void frnn_fpenv_leave(uint64_t saved)
    uint64_t frnn_fpenv_read()
    int frnn_fpenv_write(uint64_t value)

    # cells: every member, so that _core.C_ENUMS can list them
    ctypedef enum frnn_cell_type:
        FRNN_CELL_RNN_TANH
        FRNN_CELL_RNN_RELU
        FRNN_CELL_RNN_SIGMOID
        FRNN_CELL_LSTM
        FRNN_CELL_GRU
        FRNN_CELL_GRU_ORIGINAL
        FRNN_CELL_LEAKY
    ctypedef struct frnn_cell_desc:
        frnn_cell_type type
        frnn_int hidden_size
        double leak_rate
    int frnn_cell_shape(const frnn_cell_desc *cell, frnn_int *gates,
                        frnn_int *workspace_per_unit, int *has_cell_state)

    int frnn_layer_forward_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B, frnn_int In,
                               const float *x, const float *w_ih, const float *w_hh,
                               const float *b_ih, const float *b_hh, const float *h0,
                               const float *c0, float *out, float *hn, float *cn, float *ws)
    int frnn_layer_forward_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B, frnn_int In,
                               const double *x, const double *w_ih, const double *w_hh,
                               const double *b_ih, const double *b_hh, const double *h0,
                               const double *c0, double *out, double *hn, double *cn,
                               double *ws)
    int frnn_layer_backward_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B, frnn_int In,
                                const float *x, const float *w_ih, const float *w_hh,
                                const float *h0, const float *c0, const float *out,
                                const float *ws, const float *d_out, const float *d_hn,
                                const float *d_cn, float *dx, float *dw_ih, float *dw_hh,
                                float *db_ih, float *db_hh, float *dh0, float *dc0)
    int frnn_layer_backward_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B, frnn_int In,
                                const double *x, const double *w_ih, const double *w_hh,
                                const double *h0, const double *c0, const double *out,
                                const double *ws, const double *d_out, const double *d_hn,
                                const double *d_cn, double *dx, double *dw_ih, double *dw_hh,
                                double *db_ih, double *db_hh, double *dh0, double *dc0)
    int frnn_layer_forward_proj_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                    frnn_int In, frnn_int P, const float *x, const float *w_ih,
                                    const float *w_hh, const float *w_hr, const float *b_ih,
                                    const float *b_hh, const float *h0, const float *c0,
                                    float *out, float *hn, float *cn, float *ws)
    int frnn_layer_forward_proj_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                    frnn_int In, frnn_int P, const double *x, const double *w_ih,
                                    const double *w_hh, const double *w_hr, const double *b_ih,
                                    const double *b_hh, const double *h0, const double *c0,
                                    double *out, double *hn, double *cn, double *ws)
    int frnn_layer_backward_proj_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                     frnn_int In, frnn_int P, const float *x, const float *w_ih,
                                     const float *w_hh, const float *w_hr, const float *h0,
                                     const float *c0, const float *out, const float *ws,
                                     const float *d_out, const float *d_hn, const float *d_cn,
                                     float *dx, float *dw_ih, float *dw_hh, float *dw_hr,
                                     float *db_ih, float *db_hh, float *dh0, float *dc0)
    int frnn_layer_backward_proj_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                     frnn_int In, frnn_int P, const double *x,
                                     const double *w_ih, const double *w_hh, const double *w_hr,
                                     const double *h0, const double *c0, const double *out,
                                     const double *ws, const double *d_out, const double *d_hn,
                                     const double *d_cn, double *dx, double *dw_ih,
                                     double *dw_hh, double *dw_hr, double *db_ih, double *db_hh,
                                     double *dh0, double *dc0)
    int frnn_layer_forward_lengths_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                       frnn_int In, const frnn_int *lengths, const float *x,
                                       const float *w_ih, const float *w_hh, const float *b_ih,
                                       const float *b_hh, const float *h0, const float *c0,
                                       float *out, float *hn, float *cn, float *ws)
    int frnn_layer_forward_lengths_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                       frnn_int In, const frnn_int *lengths, const double *x,
                                       const double *w_ih, const double *w_hh,
                                       const double *b_ih, const double *b_hh,
                                       const double *h0, const double *c0, double *out,
                                       double *hn, double *cn, double *ws)
    int frnn_layer_backward_lengths_f32(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                        frnn_int In, const frnn_int *lengths, const float *x,
                                        const float *w_ih, const float *w_hh, const float *h0,
                                        const float *c0, const float *out, const float *ws,
                                        const float *d_out, const float *d_hn,
                                        const float *d_cn, float *dx, float *dw_ih,
                                        float *dw_hh, float *db_ih, float *db_hh, float *dh0,
                                        float *dc0)
    int frnn_layer_backward_lengths_f64(const frnn_cell_desc *cell, frnn_int T, frnn_int B,
                                        frnn_int In, const frnn_int *lengths, const double *x,
                                        const double *w_ih, const double *w_hh,
                                        const double *h0, const double *c0, const double *out,
                                        const double *ws, const double *d_out,
                                        const double *d_hn, const double *d_cn, double *dx,
                                        double *dw_ih, double *dw_hh, double *db_ih,
                                        double *db_hh, double *dh0, double *dc0)
    int frnn_layer_step_f32(const frnn_cell_desc *cell, frnn_int B, frnn_int In, const float *x,
                            const float *w_ih, const float *w_hh, const float *b_ih,
                            const float *b_hh, const float *h, const float *c, float *h_out,
                            float *c_out)
    int frnn_layer_step_f64(const frnn_cell_desc *cell, frnn_int B, frnn_int In, const double *x,
                            const double *w_ih, const double *w_hh, const double *b_ih,
                            const double *b_hh, const double *h, const double *c,
                            double *h_out, double *c_out)

    ctypedef enum frnn_head:
        FRNN_HEAD_SOFTMAX_CE
        FRNN_HEAD_SIGMOID_BCE
        FRNN_HEAD_MSE
        FRNN_HEAD_SIGMOID_MSE
    ctypedef enum frnn_clip:
        FRNN_CLIP_NONE
        FRNN_CLIP_VALUE
        FRNN_CLIP_NORM
    ctypedef enum frnn_optimizer:
        FRNN_OPT_NONE
        FRNN_OPT_SGD
        FRNN_OPT_ADAGRAD
        FRNN_OPT_RMSPROP
        FRNN_OPT_ADAM
    ctypedef struct frnn_train_config:
        frnn_cell_type cell
        frnn_int T, B, In, H, O
        int has_bias, has_head_bias, index_input, many_to_one, reduce_mean
        frnn_head head
        frnn_int k1, k2, depth
        frnn_clip clip
        double clip_value
        frnn_optimizer opt
        double lr, momentum, alpha, beta1, beta2, eps
        int nesterov
        int no_bias_hh
        double leak_rate

    int frnn_train_f32(const frnn_train_config *cfg, float *theta, float *grad, float *m,
                       float *v, int64_t *step, const float *x, const int64_t *idx,
                       const int64_t *target_idx, const float *target,
                       const uint8_t *resets, float *h, float *c,
                       double *losses, int64_t *stopped_window)
    int frnn_train_f64(const frnn_train_config *cfg, double *theta, double *grad, double *m,
                       double *v, int64_t *step, const double *x, const int64_t *idx,
                       const int64_t *target_idx, const double *target,
                       const uint8_t *resets, double *h, double *c,
                       double *losses, int64_t *stopped_window)
    int frnn_train_grads_f32(const frnn_train_config *cfg, const float *w_ih,
                             const float *w_hh, const float *b_ih, const float *b_hh,
                             const float *w_hy, const float *b_y, float *g_w_ih,
                             float *g_w_hh, float *g_b_ih, float *g_b_hh, float *g_w_hy,
                             float *g_b_y, const float *x, const int64_t *idx,
                             const int64_t *target_idx, const float *target,
                             const uint8_t *resets, float *h, float *c, double *losses,
                             int64_t *stopped_window)
    int frnn_train_grads_f64(const frnn_train_config *cfg, const double *w_ih,
                             const double *w_hh, const double *b_ih, const double *b_hh,
                             const double *w_hy, const double *b_y, double *g_w_ih,
                             double *g_w_hh, double *g_b_ih, double *g_b_hh, double *g_w_hy,
                             double *g_b_y, const double *x, const int64_t *idx,
                             const int64_t *target_idx, const double *target,
                             const uint8_t *resets, double *h, double *c, double *losses,
                             int64_t *stopped_window)

    # streaming (layer/stream.c): opaque per-dtype objects
    ctypedef struct frnn_stream_f32:
        pass
    ctypedef struct frnn_stream_f64:
        pass
    frnn_stream_f32 *frnn_stream_create_f32(const frnn_cell_desc *cell, frnn_int B, frnn_int In,
                                            const float *w_ih, const float *w_hh,
                                            const float *b_ih, const float *b_hh)
    frnn_stream_f64 *frnn_stream_create_f64(const frnn_cell_desc *cell, frnn_int B, frnn_int In,
                                            const double *w_ih, const double *w_hh,
                                            const double *b_ih, const double *b_hh)
    int frnn_stream_step_f32(frnn_stream_f32 *s, const float *x, float *h, float *c)
    int frnn_stream_step_f64(frnn_stream_f64 *s, const double *x, double *h, double *c)
    void frnn_stream_destroy_f32(frnn_stream_f32 *s)
    void frnn_stream_destroy_f64(frnn_stream_f64 *s)

    # torch.optim's updates over a flat array (layer/optimizers.c)
    ctypedef struct frnn_sgd_hyper:
        double lr, momentum, dampening, weight_decay
        int nesterov
    ctypedef struct frnn_adagrad_hyper:
        double lr, lr_decay, weight_decay, eps
    ctypedef struct frnn_rmsprop_hyper:
        double lr, alpha, eps, weight_decay, momentum
        int centered
    ctypedef struct frnn_adam_hyper:
        double lr, beta1, beta2, eps, weight_decay
        int amsgrad, decoupled_weight_decay
    int frnn_sgd_step_f32(const frnn_sgd_hyper *h, frnn_int n, float *param, const float *grad,
                          float *momentum_buffer, int first_step)
    int frnn_sgd_step_f64(const frnn_sgd_hyper *h, frnn_int n, double *param,
                          const double *grad, double *momentum_buffer, int first_step)
    int frnn_adagrad_step_f32(const frnn_adagrad_hyper *h, frnn_int n, int64_t step,
                              float *param, const float *grad, float *sum)
    int frnn_adagrad_step_f64(const frnn_adagrad_hyper *h, frnn_int n, int64_t step,
                              double *param, const double *grad, double *sum)
    int frnn_rmsprop_step_f32(const frnn_rmsprop_hyper *h, frnn_int n, float *param,
                              const float *grad, float *square_avg, float *momentum_buffer,
                              float *grad_avg)
    int frnn_rmsprop_step_f64(const frnn_rmsprop_hyper *h, frnn_int n, double *param,
                              const double *grad, double *square_avg, double *momentum_buffer,
                              double *grad_avg)
    int frnn_adam_step_f32(const frnn_adam_hyper *h, frnn_int n, int64_t step, float *param,
                           const float *grad, float *exp_avg, float *exp_avg_sq,
                           float *max_exp_avg_sq)
    int frnn_adam_step_f64(const frnn_adam_hyper *h, frnn_int n, int64_t step, double *param,
                           const double *grad, double *exp_avg, double *exp_avg_sq,
                           double *max_exp_avg_sq)
