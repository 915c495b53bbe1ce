#include <sluice_test/redis_server.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace sluice_test {

std::string redis_server::program() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/redis-server";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  for (const char* candidate : {"/usr/bin/redis-server", "/usr/sbin/redis-server"})
    if (::access(candidate, X_OK) == 0)
      return candidate;
  return {};
}

void redis_server::require() {
  if (program().empty()) {
    std::fprintf(stderr, "skipped: redis-server is not installed (scripts/setup.sh installs "
                         "the redis-server package)\n");
    std::exit(skip_code);
  }
}

namespace {
int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool accepts(const std::string& path) {
  int fd = connect_to(path);
  if (fd >= 0)
    ::close(fd);
  return fd >= 0;
}
} // namespace

void redis_server::send(const std::vector<std::string>& command) {
  int fd = connect_to(socket_);
  if (fd < 0)
    throw std::runtime_error("redis_server::send: cannot connect: " +
                             std::string(std::strerror(errno)));
  connections_.push_back(fd);
  // RESP, appended piece by piece (GCC 12 warns falsely on "x" + std::to_string(n)).
  std::string wire;
  auto line = [&](char kind, std::size_t n) {
    wire += kind;
    wire += std::to_string(n);
    wire += "\r\n";
  };
  line('*', command.size());
  for (const std::string& arg : command) {
    line('$', arg.size());
    wire += arg;
    wire += "\r\n";
  }
  if (::write(fd, wire.data(), wire.size()) != static_cast<ssize_t>(wire.size()))
    throw std::runtime_error("redis_server::send: short write");
}

redis_server::redis_server() {
  std::string pattern = (std::filesystem::temp_directory_path() / "sluice-redis-XXXXXX").string();
  if (!::mkdtemp(pattern.data()))
    throw std::runtime_error("redis_server: mkdtemp: " + std::string(std::strerror(errno)));
  dir_ = pattern;
  socket_ = dir_ + "/redis.sock";
  start();
}

redis_server::~redis_server() {
  for (int fd : connections_)
    ::close(fd);
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void redis_server::start() {
  std::filesystem::remove(socket_);
  std::string prog = program();
  std::vector<std::string> args = {
      prog,    "--port", "0",  "--unixsocket", socket_,       "--unixsocketperm",
      "700",   "--save", "",   "--appendonly", "no",          "--enable-debug-command",
      "local", "--dir",  dir_, "--logfile",    dir_ + "/log", "--daemonize",
      "no"};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (int err = ::posix_spawn(&pid_, prog.c_str(), nullptr, nullptr, argv.data(), environ))
    throw std::runtime_error("redis_server: cannot start " + prog + ": " + std::strerror(err));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!accepts(socket_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis_server: redis-server exited at start; see " + dir_ + "/log");
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("redis_server: redis-server did not listen within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(5)); // polling a condition, bounded
  }
}

void redis_server::freeze() {
  ::kill(pid_, SIGSTOP);
}
void redis_server::thaw() {
  ::kill(pid_, SIGCONT);
}

void redis_server::kill() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

} // namespace sluice_test
