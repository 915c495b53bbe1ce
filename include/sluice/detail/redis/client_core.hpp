#ifndef SLUICE_DETAIL_REDIS_CLIENT_CORE_HPP
#define SLUICE_DETAIL_REDIS_CLIENT_CORE_HPP

#include <sluice/redis/address.hpp>
#include <sluice/redis/reply.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace sluice::redis::detail {

/// A request's completion, type-erased and move-only (a handler may be move-only).
class completion {
public:
  template <class F>
  explicit completion(F f) : impl_(std::make_unique<model<F>>(std::move(f))) {}
  void operator()(const boost::system::error_code& ec, std::vector<reply> replies) {
    impl_->call(ec, std::move(replies));
  }

private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void call(const boost::system::error_code& ec, std::vector<reply> replies) = 0;
  };
  template <class F>
  struct model final : concept_t {
    explicit model(F f) : fn(std::move(f)) {}
    void call(const boost::system::error_code& ec, std::vector<reply> replies) override {
      fn(ec, std::move(replies));
    }
    F fn;
  };
  std::unique_ptr<concept_t> impl_;
};

class client_state;

/// Makes the state of a client (src/redis/client.cpp); all of it runs on `ex`.
std::shared_ptr<client_state> make_client_state(const boost::asio::any_io_executor& ex,
                                                const address& where,
                                                std::chrono::nanoseconds timeout);
/// Queues a request (RESP-encoded commands, `count` of them) from any thread.
void submit(const std::shared_ptr<client_state>& s, std::string encoded, std::size_t count,
            completion done);
void close(const std::shared_ptr<client_state>& s);
bool connected(const client_state& s);
/// RESP encoding of one command (hiredis's redisFormatCommandArgv), appended to `out`.
void encode(const std::vector<std::string>& command, std::string& out);

} // namespace sluice::redis::detail

#endif
