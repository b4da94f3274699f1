/* registry.h - the cells the core knows, one line each: its frnn_cell_type
 * (fastrnn.h) and the name of the FN(frnn_cell_ops) its file in cells/
 * defines (without the dtype suffix). Included by registry.c with
 * FRNN_CELL defined; nothing else.
 */
FRNN_CELL(FRNN_CELL_RNN_TANH, frnn_rnn_tanh_ops)
FRNN_CELL(FRNN_CELL_RNN_RELU, frnn_rnn_relu_ops)
FRNN_CELL(FRNN_CELL_RNN_SIGMOID, frnn_rnn_sigmoid_ops)
FRNN_CELL(FRNN_CELL_LSTM, frnn_lstm_ops)
FRNN_CELL(FRNN_CELL_GRU, frnn_gru_ops)
FRNN_CELL(FRNN_CELL_GRU_ORIGINAL, frnn_gru_original_ops)
FRNN_CELL(FRNN_CELL_LEAKY, frnn_leaky_ops)
