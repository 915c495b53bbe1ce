#ifndef SLUICE_REDIS_CLIENT_HPP
#define SLUICE_REDIS_CLIENT_HPP

#include <sluice/detail/redis/client_core.hpp>
#include <sluice/redis/address.hpp>
#include <sluice/redis/reply.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::redis {

/// One Redis command: its name and arguments, binary-safe.
using command = std::vector<std::string>;

/// A small Redis client on one Asio socket (unix or TCP), with hiredis as RESP encoder and
/// parser only. Made for a few requests a second that must never hang, not for throughput.
///
/// Requests: async_exec sends its commands in one write (pipelined) and completes with their
/// replies, in order, once all have arrived; requests queue and go one after another. A
/// server's error reply is a reply of kind error, not a failed request.
///
/// Failure: every request races a timer of `timeout` (from the moment it is sent, connecting
/// included). A timeout (net::error::timed_out), a connection error or a malformed reply
/// (errc::protocol_error) fails the request and closes the connection, so that no late reply
/// can be taken for the answer to a later request; the next request connects afresh.
///
/// Completion: handlers are never invoked from the initiating function; they run on their
/// associated executor (default: the client's).
///
/// Thread safety: the client's work runs on its executor, which must not run two of its
/// handlers at once (an io_context run by one thread, or a strand). async_exec, close and
/// the destructor may be called from any thread. Requests pending at destruction or close()
/// complete with net::error::operation_aborted; those still pending when the executor's
/// context shuts down are destroyed without being called, as Asio's own operations are.
class client {
public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws std::invalid_argument for a bad address (address::parse). Connects lazily.
  client(const executor_type& ex, std::string_view where,
         std::chrono::nanoseconds timeout = std::chrono::seconds(1))
      : executor_(ex), address_(address::parse(where)),
        state_(detail::make_client_state(ex, address_, timeout)) {}
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() { detail::close(state_); }

  executor_type get_executor() const { return executor_; }
  const address& server() const { return address_; }
  /// Whether a connection is open now (it may still fail at the next request).
  bool is_connected() const { return detail::connected(*state_); }
  /// Closes the connection and fails every pending request with operation_aborted.
  void close() { detail::close(state_); }

  /// Sends `commands` in one round trip; completes with
  /// void(boost::system::error_code, std::vector<reply>) and one reply per command.
  template <class Token>
  auto async_exec(std::vector<command> commands, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::vector<reply>)>(
        [this](auto handler, std::vector<command> cmds) {
          std::string encoded;
          for (const command& c : cmds)
            detail::encode(c, encoded);
          auto ex = boost::asio::get_associated_executor(handler, executor_);
          auto work = boost::asio::make_work_guard(ex);
          detail::submit(state_, std::move(encoded), cmds.size(),
                         detail::completion([h = std::move(handler), w = std::move(work)](
                                                const boost::system::error_code& ec,
                                                std::vector<reply> replies) mutable {
                           auto target = w.get_executor();
                           boost::asio::post(
                               target, boost::asio::append(std::move(h), ec, std::move(replies)));
                           w.reset();
                         }));
        },
        token, std::move(commands));
  }

private:
  executor_type executor_;
  address address_;
  std::shared_ptr<detail::client_state> state_;
};

} // namespace sluice::redis

#endif
