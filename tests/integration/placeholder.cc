// placeholder until the first integration test lands
#include <gtest/gtest.h>
