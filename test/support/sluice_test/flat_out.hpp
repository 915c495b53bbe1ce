// A rate-limited stream that writes flat out into a pipe whose far end is drained: a member
// of a group that always wants bytes (or, with a limit of its own, wants that many).
#ifndef SLUICE_TEST_FLAT_OUT_HPP
#define SLUICE_TEST_FLAT_OUT_HPP

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice_test {

class flat_out_writer {
public:
  /// Joins `group`; with `own_rate` (bytes per second) the stream is limited to that too.
  flat_out_writer(boost::asio::io_context& ctx, sluice::rate_limit_group& group,
                  std::uint64_t own_rate = sluice::unlimited)
      : flat_out_writer(sluice::make_pipe(ctx), group, own_rate) {}

  flat_out_writer(const flat_out_writer&) = delete;
  flat_out_writer& operator=(const flat_out_writer&) = delete;
  /// Completions already queued then find it gone and do nothing: destroy it on the thread
  /// that runs the io_context.
  ~flat_out_writer() { *alive_ = false; }

  void start() {
    write();
    drain();
  }
  /// A limit of its own from now on (bytes per second), or none (`unlimited`).
  void set_own_rate(std::uint64_t rate) {
    if (rate == sluice::unlimited)
      out_.clear_rate_limit();
    else
      out_.set_rate_limit(sluice::token_bucket_config::per_second(sluice::unlimited, rate));
  }
  /// The clock its own limit reads (a manual_rate_clock on virtual time); it must outlive
  /// the writer.
  void set_clock(const sluice::rate_clock& clock) { out_.set_clock(clock); }
  /// Bytes written so far.
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }

private:
  flat_out_writer(std::pair<sluice::pipe, sluice::pipe> ends, sluice::rate_limit_group& group,
                  std::uint64_t own_rate)
      : out_(std::move(ends.first)), sink_(std::move(ends.second)) {
    out_.join(group);
    set_own_rate(own_rate);
  }
  void write() {
    out_.async_write_some(boost::asio::buffer(data_),
                          [this, alive = alive_](boost::system::error_code ec, std::size_t n) {
                            if (ec || !*alive)
                              return;
                            written_.fetch_add(n, std::memory_order_relaxed);
                            write();
                          });
  }
  void drain() {
    sink_.async_read_some(boost::asio::buffer(in_),
                          [this, alive = alive_](boost::system::error_code ec, std::size_t) {
                            if (!ec && *alive)
                              drain();
                          });
  }

  sluice::rate_limited_stream<sluice::pipe> out_;
  sluice::pipe sink_;
  std::vector<char> data_ = std::vector<char>(64 * 1024, 'x');
  std::vector<char> in_ = std::vector<char>(64 * 1024);
  std::atomic<std::uint64_t> written_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace sluice_test

#endif
