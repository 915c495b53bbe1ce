// The entry point of every test executable: Boost.Test's runner, with the test module named
// after the executable ("test_pipe" runs module "pipe"), so the test files need no
// BOOST_TEST_MODULE and can share one precompiled header.
#include <boost/test/unit_test.hpp>

#include <string>

namespace {

std::string module_name;

bool init() {
  boost::unit_test::framework::master_test_suite().p_name.value = module_name;
  return true;
}

} // namespace

int main(int argc, char* argv[]) {
  std::string name = argc > 0 ? argv[0] : "sluice";
  name.erase(0, name.find_last_of('/') + 1);
  if (name.rfind("test_", 0) == 0)
    name.erase(0, 5);
  module_name = name;
  return boost::unit_test::unit_test_main(&init, argc, argv);
}
