/* threads.c - placeholder: the thread count setting; the pool follows. */
#include "fastrnn.h"

static int num_threads = 1;

void frnn_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }
int frnn_get_num_threads(void) { return num_threads; }
