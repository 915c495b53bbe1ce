#include <sluice/detail/core/parking_lot.hpp>
#include <sluice/detail/redis/client_core.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sluice::redis::detail {

namespace net = boost::asio;
using boost::system::error_code;

namespace {

reply convert(const redisReply& r) {
  reply out;
  switch (r.type) {
  case REDIS_REPLY_STRING:
    out.type = reply::kind::string;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_STATUS:
    out.type = reply::kind::status;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_ERROR:
    out.type = reply::kind::error;
    out.str.assign(r.str, r.len);
    break;
  case REDIS_REPLY_INTEGER:
    out.type = reply::kind::integer;
    out.integer = r.integer;
    break;
  case REDIS_REPLY_ARRAY:
    out.type = reply::kind::array;
    out.elements.reserve(r.elements);
    for (std::size_t i = 0; i < r.elements; ++i)
      out.elements.push_back(convert(*r.element[i]));
    break;
  default:
    out.type = reply::kind::nil;
  }
  return out;
}

struct reader_deleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct reply_deleter {
  void operator()(void* r) const { freeReplyObject(r); }
};

} // namespace

void encode(const std::vector<std::string>& command, std::string& out) {
  if (command.empty())
    throw std::invalid_argument("sluice::redis: an empty command");
  if (command.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("sluice::redis: too many arguments");
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : command) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* target = nullptr;
  int n = redisFormatCommandArgv(&target, static_cast<int>(command.size()), argv.data(),
                                 lengths.data());
  if (n < 0 || !target)
    throw std::bad_alloc();
  out.append(target, static_cast<std::size_t>(n));
  redisFreeCommand(target);
}

/// A request's bytes and its completion.
struct request {
  std::string encoded;
  std::size_t count;
  completion done;
};

/// The requests a client still had queued when its execution context shut down, destroyed
/// then as one parked operation (sluice::detail::watch_shutdown). Their completions hold
/// their callers' handlers, which may hold the client (the fleet group's loop does): without
/// this, such a client and its caller would keep each other forever.
struct abandoned_requests final : sluice::detail::parked_op {
  abandoned_requests(std::deque<request> q, net::execution_context* ctx)
      : parked_op(&destroy_only, ctx), queue(std::move(q)) {}
  static void destroy_only(parked_op* op, const error_code*, std::size_t) {
    delete static_cast<abandoned_requests*>(op);
  }
  std::deque<request> queue;
};

class client_state : public sluice::detail::parking_lot,
                     public std::enable_shared_from_this<client_state> {
public:
  client_state(const net::any_io_executor& ex, const address& where,
               std::chrono::nanoseconds timeout)
      : executor_(ex), address_(where), timeout_(timeout), socket_(ex), timer_(ex), resolver_(ex) {}

  void submit(request r) {
    queue_.push_back(std::move(r));
    if (!busy_)
      next();
  }

  void close() {
    ++generation_;
    shut();
    std::deque<request> pending = std::move(queue_);
    queue_.clear();
    busy_ = false;
    for (request& r : pending)
      r.done(net::error::operation_aborted, {});
  }

  const net::any_io_executor& get_executor() const { return executor_; }

  // Requests are cancelled all together (close), not one by one.
  void cancel(std::size_t, std::uint64_t) override {}

  // The context shuts down: nothing of it runs any more, so no lock is needed.
  void withdraw(net::execution_context& ctx,
                std::vector<sluice::detail::parked_op*>& out) override {
    ++generation_;
    busy_ = false;
    if (!queue_.empty())
      out.push_back(new abandoned_requests(std::exchange(queue_, {}), &ctx));
  }

  std::atomic<bool> connected{false};

private:
  void next() {
    if (queue_.empty()) {
      busy_ = false;
      return;
    }
    busy_ = true;
    const std::uint64_t gen = ++generation_;
    timer_.expires_after(timeout_);
    timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) {
      if (!ec && gen == self->generation_)
        self->fail(net::error::timed_out);
    });
    replies_.clear();
    if (socket_.is_open())
      write(gen);
    else
      connect(gen);
  }

  void connect(std::uint64_t gen) {
    auto self = shared_from_this();
    auto on_connect = [self, gen](const error_code& ec, const auto&) {
      if (gen != self->generation_)
        return;
      if (ec)
        return self->fail(ec);
      self->reader_.reset(redisReaderCreate());
      if (!self->reader_)
        return self->fail(net::error::no_memory);
      self->connected = true;
      self->write(gen);
    };
    if (address_.type == address::kind::unix_socket) {
      std::array<net::generic::stream_protocol::endpoint, 1> eps{
          net::generic::stream_protocol::endpoint(
              net::local::stream_protocol::endpoint(address_.path))};
      return net::async_connect(socket_, eps, on_connect);
    }
    resolver_.async_resolve(address_.host, address_.port,
                            [self, gen, on_connect](const error_code& ec,
                                                    net::ip::tcp::resolver::results_type results) {
                              if (gen != self->generation_)
                                return;
                              if (ec)
                                return self->fail(ec);
                              std::vector<net::generic::stream_protocol::endpoint> eps;
                              for (const auto& entry : results)
                                eps.emplace_back(entry.endpoint());
                              net::async_connect(self->socket_, eps, on_connect);
                            });
  }

  void write(std::uint64_t gen) {
    net::async_write(socket_, net::buffer(queue_.front().encoded),
                     [self = shared_from_this(), gen](const error_code& ec, std::size_t) {
                       if (gen != self->generation_)
                         return;
                       if (ec)
                         return self->fail(ec);
                       self->read(gen);
                     });
  }

  void read(std::uint64_t gen) {
    socket_.async_read_some(net::buffer(buffer_),
                            [self = shared_from_this(), gen](const error_code& ec, std::size_t n) {
                              if (gen != self->generation_)
                                return;
                              if (ec)
                                return self->fail(ec);
                              self->parse(gen, n);
                            });
  }

  void parse(std::uint64_t gen, std::size_t n) {
    if (redisReaderFeed(reader_.get(), buffer_.data(), n) != REDIS_OK)
      return fail(errc::protocol_error);
    const std::size_t want = queue_.front().count;
    while (replies_.size() < want) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK)
        return fail(errc::protocol_error);
      if (!raw)
        return read(gen); // the rest is still on its way
      std::unique_ptr<void, reply_deleter> owned(raw);
      replies_.push_back(convert(*static_cast<redisReply*>(raw)));
    }
    // A reply beyond those asked for is one nobody asked for: the stream is out of step.
    void* extra = nullptr;
    if (redisReaderGetReply(reader_.get(), &extra) != REDIS_OK || extra) {
      if (extra)
        freeReplyObject(extra);
      return fail(errc::protocol_error);
    }
    ++generation_; // the timer's wait is void from here on
    timer_.cancel();
    finish({}, std::move(replies_));
  }

  void fail(const error_code& ec) {
    ++generation_;
    shut();
    finish(ec, {});
  }

  // Completes the front request, then starts the next. The completion only posts.
  void finish(const error_code& ec, std::vector<reply> replies) {
    request r = std::move(queue_.front());
    queue_.pop_front();
    busy_ = false;
    r.done(ec, std::move(replies));
    if (!busy_)
      next();
  }

  void shut() {
    error_code ignored;
    timer_.cancel();
    resolver_.cancel();
    socket_.close(ignored);
    reader_.reset();
    connected = false;
  }

  net::any_io_executor executor_;
  address address_;
  std::chrono::nanoseconds timeout_;
  net::generic::stream_protocol::socket socket_;
  net::steady_timer timer_;
  net::ip::tcp::resolver resolver_;
  std::unique_ptr<redisReader, reader_deleter> reader_;
  std::deque<request> queue_;
  std::vector<reply> replies_;
  std::array<char, 4096> buffer_{};
  std::uint64_t generation_ = 0; // a completion of an earlier generation is stale
  bool busy_ = false;
};

std::shared_ptr<client_state> make_client_state(const net::any_io_executor& ex,
                                                const address& where,
                                                std::chrono::nanoseconds timeout) {
  auto s = std::make_shared<client_state>(ex, where, timeout);
  sluice::detail::watch_shutdown(sluice::detail::context_of(ex), s);
  return s;
}

void submit(const std::shared_ptr<client_state>& s, std::string encoded, std::size_t count,
            completion done) {
  // Everything happens on the executor, so a client may be used from any thread.
  auto r = std::make_shared<request>(request{std::move(encoded), count, std::move(done)});
  net::post(s->get_executor(), [s, r] {
    if (r->count == 0)
      return r->done({}, {});
    s->submit(std::move(*r));
  });
}

void close(const std::shared_ptr<client_state>& s) {
  net::post(s->get_executor(), [s] { s->close(); });
}

bool connected(const client_state& s) {
  return s.connected.load();
}

} // namespace sluice::redis::detail
