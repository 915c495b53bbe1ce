// A redis-server of the test's own: a unix socket in a temporary directory, no TCP port, no
// persistence, DEBUG allowed. Tests of sluice::redis start one, freeze it (SIGSTOP), kill it
// and restart it empty on the same socket.
#ifndef SLUICE_TEST_REDIS_SERVER_HPP
#define SLUICE_TEST_REDIS_SERVER_HPP

#include <string>
#include <sys/types.h>
#include <vector>

namespace sluice_test {

class redis_server {
public:
  /// The exit code that makes CTest count a test as skipped (SKIP_RETURN_CODE).
  static constexpr int skip_code = 77;
  /// Where redis-server is, or "" when it is not installed.
  static std::string program();
  /// Exits with skip_code, saying why, unless redis-server is installed. For a test module's
  /// global fixture.
  static void require();

  /// Starts the server and waits (bounded) until it accepts connections; throws on failure.
  redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  ~redis_server(); // kills it and removes the directory

  /// "unix:PATH", for sluice::redis::client.
  std::string address() const { return "unix:" + socket_; }
  const std::string& socket_path() const { return socket_; }
  pid_t pid() const { return pid_; }

  void freeze(); // SIGSTOP
  void thaw();   // SIGCONT
  void kill();   // SIGKILL, and reaped
  void start();  // after kill(): a new, empty server on the same socket
  /// Sends a command on a connection of its own without waiting for the reply (DEBUG SLEEP,
  /// CLIENT PAUSE); the connection stays open until the server object goes.
  void send(const std::vector<std::string>& command);

private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
  std::vector<int> connections_;
};

} // namespace sluice_test

#endif
