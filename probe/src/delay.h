#ifndef HP_DELAY_H
#define HP_DELAY_H
#include <stdint.h>

/* The release schedule of held packets (pure; unit-tested). Each packet is held `delay_us`
 * ± `jitter_us` (uniform) from its arrival, but never released before the packet ahead of it:
 * release order is arrival order, so jitter never reorders a flow. */
struct delay_sched {
    int64_t delay_us, jitter_us;
    uint64_t rng;            /* xorshift64* state, never 0 */
    int64_t last_release_us; /* release time of the previous packet */
};

void delay_sched_init(struct delay_sched *s, int64_t delay_us, int64_t jitter_us, uint64_t seed);
/* When a packet arriving at `now_us` is released. */
int64_t delay_sched_next(struct delay_sched *s, int64_t now_us);

int delay_main(int argc, char **argv);
#endif
