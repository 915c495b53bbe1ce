#include <consumer_lib.hpp>

int main() {
  return consumer_pipe_round_trip() ? 0 : 1;
}
