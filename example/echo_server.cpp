// An echo server written with plain callbacks, shaped by sluice: each connection has its
// own limit, and all of them share a group's total fairly. Against an unshaped echo server
// the change is the socket's type, one set_rate_limit and one join (marked "sluice:").
//
//   echo_server          runs three clients against it on loopback and checks the echoes
//   echo_server PORT     serves on 127.0.0.1:PORT until interrupted
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace net = boost::asio;
using net::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr std::uint64_t per_connection = 200'000; // bytes per second, each way
constexpr std::uint64_t in_all = 300'000;         // bytes per second, all connections

/// `bytes_per_second` each way.
sluice::token_bucket_config limit(std::uint64_t bytes_per_second) {
  return sluice::token_bucket_config::per_second(bytes_per_second, bytes_per_second);
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, sluice::rate_limit_group& group) : socket_(std::move(socket)) {
    // sluice: the connection's own limit, and its place in the group.
    socket_.set_rate_limit(limit(per_connection));
    socket_.join(group);
  }

  void start() { read(); }

private:
  void read() {
    socket_.async_read_some(net::buffer(buffer_), [self = shared_from_this()](
                                                      boost::system::error_code ec, std::size_t n) {
      if (!ec)
        self->write(n);
    });
  }

  void write(std::size_t n) {
    net::async_write(socket_, net::buffer(buffer_, n),
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       if (!ec)
                         self->read();
                     });
  }

  sluice::rate_limited_stream<tcp::socket> socket_; // sluice: was tcp::socket
  std::array<char, 16 * 1024> buffer_;
};

void accept(tcp::acceptor& acceptor, sluice::rate_limit_group& group) {
  acceptor.async_accept([&](boost::system::error_code ec, tcp::socket socket) {
    if (ec)
      return;
    std::make_shared<session>(std::move(socket), group)->start();
    accept(acceptor, group);
  });
}

/// A client that sends `size` bytes and reads them back; reports how long that took.
class client : public std::enable_shared_from_this<client> {
public:
  client(net::io_context& ctx, std::size_t size, unsigned seed) : socket_(ctx), out_(size, '\0') {
    for (std::size_t i = 0; i < size; ++i)
      out_[i] = static_cast<char>('a' + (seed + i * 7) % 26);
    in_.resize(size);
  }

  void start(const tcp::endpoint& server) {
    started_ = clock_type::now();
    socket_.async_connect(server, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec)
        return;
      net::async_write(self->socket_, net::buffer(self->out_), [](auto, auto) {});
      net::async_read(self->socket_, net::buffer(self->in_),
                      [self](boost::system::error_code ec, std::size_t) {
                        self->ok_ = !ec && self->in_ == self->out_;
                        self->took_ = clock_type::now() - self->started_;
                      });
    });
  }

  bool ok() const { return ok_; }
  double seconds() const { return std::chrono::duration<double>(took_).count(); }
  double rate() const { return static_cast<double>(out_.size()) / seconds(); }

private:
  tcp::socket socket_;
  std::string out_, in_;
  clock_type::time_point started_;
  clock_type::duration took_{};
  bool ok_ = false;
};

int main(int argc, char** argv) {
  net::io_context ctx;
  // sluice: the group all connections share.
  sluice::rate_limit_group group(ctx, limit(in_all));
  unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 0;
  tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), port});
  accept(acceptor, group);

  if (argc > 1) {
    std::printf("echoing on %s, %llu B/s per connection, %llu B/s in all\n",
                acceptor.local_endpoint().address().to_string().c_str(),
                static_cast<unsigned long long>(per_connection),
                static_cast<unsigned long long>(in_all));
    net::signal_set stop(ctx, SIGINT, SIGTERM);
    stop.async_wait([&](auto, int) { ctx.stop(); });
    ctx.run();
    return 0;
  }

  // Three clients at once, 100 KB each: the group's 300 KB/s shared three ways is below
  // each connection's own 200 KB/s, so each should see about 100 KB/s.
  std::vector<std::shared_ptr<client>> clients;
  for (unsigned i = 0; i < 3; ++i) {
    clients.push_back(std::make_shared<client>(ctx, 100'000, i));
    clients.back()->start(acceptor.local_endpoint());
  }
  auto all_done = [&] {
    for (auto& c : clients)
      if (c->seconds() == 0)
        return false;
    return true;
  };
  while (!all_done() && ctx.run_one_for(std::chrono::seconds(10)) > 0) {
  }
  bool ok = all_done();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    std::printf("client %zu: %s, %.2f s, %.0f B/s echoed\n", i,
                clients[i]->ok() ? "echo intact" : "FAILED", clients[i]->seconds(),
                clients[i]->rate());
    ok = ok && clients[i]->ok();
  }
  std::printf("group total: %llu bytes read, %llu written\n",
              static_cast<unsigned long long>(group.totals().read),
              static_cast<unsigned long long>(group.totals().written));
  return ok ? 0 : 1;
}
