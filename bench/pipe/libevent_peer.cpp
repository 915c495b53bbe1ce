// The pipe benchmark's libevent peer: a bufferevent_pair on its own event_base. A write
// callback drives the next write, a read callback drains into a user buffer, as the Asio
// readers do.
#include "pipe/pattern.hpp"
#include "pipe/peers.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace sluice::bench::pipe_bench {
namespace {

/// An event_base and a bufferevent_pair on it.
class libevent_pair {
public:
  libevent_pair() {
    base_ = event_base_new();
    check(base_ != nullptr, "event_base_new failed");
    if (bufferevent_pair_new(base_, 0, ends_.data()) != 0) {
      event_base_free(base_);
      throw check_failed("bufferevent_pair_new failed");
    }
  }
  libevent_pair(const libevent_pair&) = delete;
  libevent_pair& operator=(const libevent_pair&) = delete;
  ~libevent_pair() {
    bufferevent_free(ends_[0]);
    bufferevent_free(ends_[1]);
    event_base_free(base_);
  }

  event_base* base() const { return base_; }
  bufferevent* end(int i) const { return ends_[static_cast<std::size_t>(i)]; }

private:
  event_base* base_ = nullptr;
  std::array<bufferevent*, 2> ends_{};
};

/// Bulk transfer: the write callback (output drained to the low watermark 0, i.e. the chunk
/// went over) writes the next chunk; the read callback copies what arrived into a
/// chunk-sized user buffer, as the Asio readers do.
class libevent_bulk {
public:
  libevent_bulk(std::span<const std::byte> src, std::span<std::byte> dst) : src_(src), dst_(dst) {
    bufferevent_setcb(pair_.end(0), nullptr, &on_write, nullptr, this);
    bufferevent_setcb(pair_.end(1), &on_read, nullptr, nullptr, this);
    bufferevent_enable(pair_.end(0), EV_WRITE);
    bufferevent_enable(pair_.end(1), EV_READ);
  }

  std::uint64_t run(std::uint64_t total) {
    total_ = total;
    written_ = read_ = 0;
    failure_.clear();
    write_next();
    event_base_dispatch(pair_.base()); // returns when no callback is left to run
    check(failure_.empty(), failure_);
    check(written_ == total_ && read_ == total_,
          format("wrote %llu / read %llu of %llu bytes", static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(read_), static_cast<unsigned long long>(total_)));
    return read_;
  }

private:
  static void on_write(bufferevent*, void* self) {
    static_cast<libevent_bulk*>(self)->write_next();
  }

  static void on_read(bufferevent* bev, void* self) {
    static_cast<libevent_bulk*>(self)->drain(bufferevent_get_input(bev));
  }

  void write_next() {
    if (written_ == total_)
      return;
    std::size_t n = std::min<std::uint64_t>(src_.size(), total_ - written_);
    if (bufferevent_write(pair_.end(0), src_.data(), n) != 0)
      return fail("bufferevent_write failed");
    written_ += n;
  }

  void drain(evbuffer* in) {
    for (;;) {
      int got = evbuffer_remove(in, dst_.data(), dst_.size());
      if (got <= 0)
        return;
      auto n = static_cast<std::size_t>(got);
      if (!read_matches(src_, dst_.first(n), read_, reads_++))
        return fail(format("read of %zu bytes at %llu: wrong bytes", n,
                           static_cast<unsigned long long>(read_)));
      read_ += n;
    }
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    event_base_loopbreak(pair_.base());
  }

  libevent_pair pair_;
  std::span<const std::byte> src_;
  std::span<std::byte> dst_;
  std::uint64_t total_ = 0, written_ = 0, read_ = 0;
  std::uint64_t reads_ = 0; // completed reads, for read_matches' sampling
  std::string failure_;
};

/// 1-byte round trips: A's read callback checks the echo and sends the next byte; B's read
/// callback echoes what it reads.
class libevent_round_trips {
public:
  libevent_round_trips() {
    bufferevent_setcb(pair_.end(0), &on_read_a, nullptr, nullptr, this);
    bufferevent_setcb(pair_.end(1), &on_read_b, nullptr, nullptr, this);
    for (int i = 0; i < 2; ++i)
      bufferevent_enable(pair_.end(i), EV_READ | EV_WRITE);
  }

  std::uint64_t run(std::uint64_t count) {
    target_ = count;
    done_ = echoed_ = 0;
    failure_.clear();
    send();
    event_base_dispatch(pair_.base());
    check(failure_.empty(), failure_);
    check(done_ == target_ && echoed_ == target_,
          format("%llu round trips, %llu echoes, of %llu", static_cast<unsigned long long>(done_),
                 static_cast<unsigned long long>(echoed_),
                 static_cast<unsigned long long>(target_)));
    return done_;
  }

private:
  void send() {
    out_ = static_cast<unsigned char>(done_ * 7 + 1);
    if (bufferevent_write(pair_.end(0), &out_, 1) != 0)
      fail("A write failed");
  }

  static void on_read_a(bufferevent* bev, void* arg) {
    auto* self = static_cast<libevent_round_trips*>(arg);
    unsigned char in = 0;
    while (evbuffer_remove(bufferevent_get_input(bev), &in, 1) == 1) {
      if (in != self->out_)
        return self->fail("A read: wrong echo");
      if (++self->done_ < self->target_)
        self->send();
    }
  }

  static void on_read_b(bufferevent* bev, void* arg) {
    auto* self = static_cast<libevent_round_trips*>(arg);
    unsigned char in = 0;
    while (evbuffer_remove(bufferevent_get_input(bev), &in, 1) == 1) {
      ++self->echoed_;
      if (bufferevent_write(bev, &in, 1) != 0)
        return self->fail("B write failed");
    }
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    event_base_loopbreak(pair_.base());
  }

  libevent_pair pair_;
  unsigned char out_ = 0;
  std::uint64_t target_ = 0, done_ = 0, echoed_ = 0;
  std::string failure_;
};

workload bulk_workload(std::size_t chunk, const config& cfg) {
  struct state {
    state(std::size_t chunk, std::size_t offset)
        : src(make_pattern(chunk)), dst(offset + chunk),
          transfer(src.span(), dst.span().subspan(offset)) {}
    page_buffer src, dst;
    libevent_bulk transfer;
  };
  auto s = std::make_shared<state>(chunk, cfg.offset);
  return [s](std::uint64_t n) { return s->transfer.run(n); };
}

workload round_trip_workload() {
  auto s = std::make_shared<libevent_round_trips>();
  return [s](std::uint64_t n) { return s->run(n); };
}

} // namespace

workload libevent_workload(bench_case c, const config& cfg) {
  return c == round_trip ? round_trip_workload() : bulk_workload(chunk_of[c], cfg);
}

} // namespace sluice::bench::pipe_bench
