// The one doctest main every tests/cpu/*.cpp executable links (compiled once).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
