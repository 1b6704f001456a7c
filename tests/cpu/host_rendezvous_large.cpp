// Every schedule runs to the end on the host backend (p = 5..8; p = 1..4 in
// host_rendezvous.cpp) — one thread per rank, rendezvous
// channels, so a wrong transfer order would hang (the timeout turns a hang into a failure)
// — and every boundary a pass reads holds what its producer wrote.
#include "host_rendezvous_check.hpp"

using plan_test::run_all;

TEST_CASE("host.rendezvous.p5.m4") { run_all<5, 4>(); }
TEST_CASE("host.rendezvous.p6.m6") { run_all<6, 6>(); }
TEST_CASE("host.rendezvous.p7.m9") { run_all<7, 9>(); }
TEST_CASE("host.rendezvous.p8.m12") { run_all<8, 12>(); }
