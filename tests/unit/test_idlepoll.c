/* test_idlepoll.c - the event loop's adaptive poll window: it grows while
 * work comes within the limit, falls to nothing when it does not, stays
 * within a changed limit, stops while CPUs are contended, and the pressure
 * file's "some total" is read exactly. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../src/common/idlepoll.h"
#include "test.h"

#define US 1000ull
#define LIMIT (50 * US)

/* A poll of LIMIT, opened all the way by work that kept coming at once. */
static void t_open(struct idlepoll *p)
{
    idlepoll_init(p, LIMIT);
    for (int i = 0; i < 5; i++)
        idlepoll_slept(p, 0);
}

TEST(idlepoll_starts_closed_and_opens_while_work_comes_within_the_limit)
{
    struct idlepoll p;
    idlepoll_init(&p, LIMIT);
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    idlepoll_slept(&p, 5 * US); /* a longer poll would have caught it */
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 4);
    idlepoll_slept(&p, 5 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 2);
    idlepoll_slept(&p, 5 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT);
    idlepoll_slept(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT); /* never past the limit */
}

TEST(idlepoll_closes_when_work_comes_further_apart_than_the_limit)
{
    struct idlepoll p;
    t_open(&p);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT);
    /* the poll ran its 50 us, then 1 ms more of sleep: it was wasted */
    idlepoll_slept(&p, 1000 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 2);
    idlepoll_slept(&p, 1000 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 4);
    idlepoll_slept(&p, 1000 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 8);
    idlepoll_slept(&p, 1000 * US);
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    idlepoll_slept(&p, 1000 * US);
    CHECK_EQ_INT(idlepoll_window(&p), 0);
}

TEST(idlepoll_counts_the_poll_itself_against_the_limit)
{
    struct idlepoll p;
    t_open(&p);
    /* 50 us of poll plus 1 us of sleep: the work came 51 us after the loop
     * ran out, past the limit, so no window would have caught it */
    idlepoll_slept(&p, 1 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 2);
    /* 25 + 25: exactly the limit, which a full window does catch */
    idlepoll_slept(&p, 25 * US);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT);
}

TEST(idlepoll_a_steady_load_keeps_it_open_and_an_idle_spell_closes_it)
{
    struct idlepoll p;
    idlepoll_init(&p, LIMIT);
    uint64_t polled_ns = 0; /* what a loop spends polling in vain */
    for (int i = 0; i < 1000; i++) {
        /* requests 20 us apart, caught by the poll: no sleep at all */
        if (idlepoll_window(&p) < 20 * US) {
            polled_ns += idlepoll_window(&p);
            idlepoll_slept(&p, 20 * US - idlepoll_window(&p));
        }
    }
    CHECK(idlepoll_window(&p) >= 20 * US);
    CHECK(polled_ns < 100 * US);
    /* then one request a second: after a handful the loop polls no more */
    polled_ns = 0;
    for (int i = 0; i < 100; i++) {
        polled_ns += idlepoll_window(&p);
        idlepoll_slept(&p, 1000000 * US);
    }
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    CHECK(polled_ns <= 2 * LIMIT);
}

TEST(idlepoll_a_new_limit_bounds_the_window_and_zero_turns_it_off)
{
    struct idlepoll p;
    t_open(&p);
    idlepoll_set_limit(&p, 10 * US);
    CHECK_EQ_INT(idlepoll_window(&p), 10 * US);
    idlepoll_slept(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), 10 * US);
    idlepoll_set_limit(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    for (int i = 0; i < 5; i++)
        idlepoll_slept(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    idlepoll_set_limit(&p, LIMIT); /* and back: it opens again */
    idlepoll_slept(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT / 4);
}

TEST(idlepoll_stops_while_tasks_wait_for_a_cpu)
{
    struct idlepoll p;
    t_open(&p);
    /* 5% waited, tick after tick: no contention */
    for (int i = 0; i < 20; i++)
        idlepoll_pressure(&p, 5000, 100000);
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT);
    /* one busy tick (50%) moves the average to under 20%: polling goes on */
    idlepoll_pressure(&p, 50000, 100000);
    CHECK(!idlepoll_contended(&p));
    CHECK_EQ_INT(idlepoll_window(&p), LIMIT);
    /* a few more and it stops, the window with it */
    idlepoll_pressure(&p, 50000, 100000);
    idlepoll_pressure(&p, 50000, 100000);
    CHECK(idlepoll_contended(&p));
    CHECK_EQ_INT(idlepoll_window(&p), 0);
    idlepoll_slept(&p, 0);
    CHECK_EQ_INT(idlepoll_window(&p), 0); /* learning goes on, polling does not */
    /* more waited than elapsed (several tasks waiting) counts as all */
    idlepoll_pressure(&p, 400000, 100000);
    CHECK(idlepoll_contended(&p) && p.pressure <= 1000);
    /* quiet ticks bring it back */
    for (int i = 0; i < 20; i++)
        idlepoll_pressure(&p, 0, 100000);
    CHECK(!idlepoll_contended(&p));
    CHECK_EQ_INT(idlepoll_window(&p), 0); /* contention emptied it */
    idlepoll_slept(&p, 0);
    CHECK(idlepoll_window(&p) > 0);
    /* no time passed: no sample */
    uint64_t before = p.pressure;
    idlepoll_pressure(&p, 100, 0);
    CHECK_EQ_INT(p.pressure, before);
}

TEST(idlepoll_reads_the_some_total_of_the_pressure_file)
{
    const char *f = "some avg10=1.43 avg60=11.05 avg300=10.69 total=3509466102\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    uint64_t t = 7;
    CHECK(idlepoll_parse_psi(f, strlen(f), &t));
    CHECK_EQ_INT(t, 3509466102ll);
    const char *one = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0";
    CHECK(idlepoll_parse_psi(one, strlen(one), &t) && t == 0);
    /* the figure belongs to the "some" line only */
    const char *nosome = "some avg10=0.00 avg60=0.00 avg300=0.00\nfull total=5\n";
    CHECK(!idlepoll_parse_psi(nosome, strlen(nosome), &t));
    const char *bad[] = {"", "some", "full avg10=0.00 total=5\n", "some total=\n",
                         "some total=x1\n", "some total=99999999999999999999999\n",
                         "total=5 some\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!idlepoll_parse_psi(bad[i], strlen(bad[i]), &t));
    /* a read cut short inside the number stops at the cut */
    CHECK(idlepoll_parse_psi(f, 52, &t) && t == 35094);
}

int main(void)
{
    RUN(idlepoll_starts_closed_and_opens_while_work_comes_within_the_limit);
    RUN(idlepoll_closes_when_work_comes_further_apart_than_the_limit);
    RUN(idlepoll_counts_the_poll_itself_against_the_limit);
    RUN(idlepoll_a_steady_load_keeps_it_open_and_an_idle_spell_closes_it);
    RUN(idlepoll_a_new_limit_bounds_the_window_and_zero_turns_it_off);
    RUN(idlepoll_stops_while_tasks_wait_for_a_cpu);
    RUN(idlepoll_reads_the_some_total_of_the_pressure_file);
    return test_summary("idlepoll");
}
