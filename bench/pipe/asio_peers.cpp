// The pipe benchmark's Asio peers: sluice::pipe as users create it, beast::test::stream and
// an Asio local socketpair.
#include "pipe/asio_transfers.hpp"
#include "pipe/peers.hpp"

#include <sluice/pipe.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <utility>

namespace sluice::bench::pipe_bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

std::pair<sluice::pipe, sluice::pipe> make_sluice(net::io_context& ctx) {
  return sluice::make_pipe(ctx); // any_io_executor, default options: as users write it
}

std::pair<beast::test::stream, beast::test::stream> make_beast(net::io_context& ctx) {
  beast::test::stream a(ctx), b(ctx);
  a.connect(b);
  return {std::move(a), std::move(b)};
}

using local_socket = net::local::stream_protocol::socket;
std::pair<local_socket, local_socket> make_socketpair(net::io_context& ctx) {
  local_socket a(ctx), b(ctx);
  net::local::connect_pair(a, b);
  return {std::move(a), std::move(b)};
}

} // namespace

workload sluice_workload(bench_case c, const config& cfg) {
  return asio_case(make_sluice, c, cfg);
}

workload beast_workload(bench_case c, const config& cfg) {
  return asio_case(make_beast, c, cfg);
}

workload socketpair_workload(bench_case c, const config& cfg) {
  return asio_case(make_socketpair, c, cfg);
}

} // namespace sluice::bench::pipe_bench
