// Every schedule runs to the end on the host backend (p = 1..4; p = 5..8 in
// host_rendezvous_large.cpp) — one thread per rank, rendezvous
// channels, so a wrong transfer order would hang (the timeout turns a hang into a failure)
// — and every boundary a pass reads holds what its producer wrote.
#include "host_rendezvous_check.hpp"

using plan_test::run_all;

TEST_CASE("host.rendezvous.p1.m3") { run_all<1, 3>(); }
TEST_CASE("host.rendezvous.p2.m1") { run_all<2, 1>(); }
TEST_CASE("host.rendezvous.p2.m5") { run_all<2, 5>(); }
TEST_CASE("host.rendezvous.p3.m2") { run_all<3, 2>(); }
TEST_CASE("host.rendezvous.p3.m7") { run_all<3, 7>(); }
TEST_CASE("host.rendezvous.p4.m9") { run_all<4, 9>(); }
