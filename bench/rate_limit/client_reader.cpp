#include "rate_limit/client_reader.hpp"
#include "support/system.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace sluice::bench::ratelim_bench {

client_reader::client_reader(const std::vector<connection_fds>& conns) : received_(conns.size()) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_ < 0 || wake_ < 0)
    throw_errno("epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = stop_key;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0)
    throw_errno("epoll_ctl");
  fds_.reserve(conns.size());
  for (std::size_t i = 0; i < conns.size(); ++i) {
    fds_.push_back(conns[i].client);
    ev.data.u64 = i;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, conns[i].client, &ev) != 0)
      throw_errno("epoll_ctl");
  }
  thread_ = std::thread([this] { loop(); });
}

client_reader::~client_reader() {
  stop();
  ::close(epoll_);
  ::close(wake_);
}

void client_reader::stop() {
  if (!thread_.joinable())
    return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wake_, &one, sizeof one);
  thread_.join();
}

void client_reader::loop() {
  std::vector<char> buf(64 * 1024);
  std::array<epoll_event, 256> events{};
  for (;;) {
    int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return;
    for (int e = 0; e < n; ++e) {
      std::uint64_t i = events[e].data.u64;
      if (i == stop_key)
        return;
      ssize_t k = ::read(fds_[i], buf.data(), buf.size());
      if (k > 0) {
        received_[i].store(received_[i].load(std::memory_order_relaxed) +
                               static_cast<std::uint64_t>(k),
                           std::memory_order_relaxed);
      } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fds_[i], nullptr);
        ++closed_;
      }
    }
  }
}

} // namespace sluice::bench::ratelim_bench
