// TLS and HTTP over sluice::pipe: ssl::stream<pipe> on both ends (handshake, 300 KB each way,
// clean shutdown), and Boost.Beast HTTP over a pipe, plain and inside TLS. The certificate
// is made at test time, in memory (sluice_test/tls.hpp): no key is committed.
#include <boost/test/unit_test.hpp>

#include <sluice/pipe.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// GCC 12 with sanitizers reports a false -Wmaybe-uninitialized inside Beast's parser (a
// boost::optional returned as none); it is Boost's code, not ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <sluice_test/completion.hpp>
#include <sluice_test/pattern.hpp>
#include <sluice_test/support.hpp>
#include <sluice_test/tls.hpp>

#include <openssl/x509.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using boost::system::error_code;
using namespace std::chrono_literals;

using namespace sluice_test;

namespace {

// A server context with the test certificate, and a client context that trusts only it and
// checks the host name.
struct tls_contexts {
  ssl::context server = server_context();
  ssl::context client = client_context();

  tls_contexts() { client.set_verify_callback(ssl::host_name_verification(tls_host)); }
};

using tls_pipe = ssl::stream<sluice::pipe>;

// Both ends of a pipe wrapped in TLS, handshaken.
struct tls_pair {
  tls_pair(net::io_context& ctx, tls_contexts& tls, sluice::pipe_options options = {})
      : pipes(sluice::make_pipe(ctx, options)), client(std::move(pipes.first), tls.client),
        server(std::move(pipes.second), tls.server) {}

  // The ends are moved into the streams; `pipes` holds the moved-from shells.
  std::pair<sluice::pipe, sluice::pipe> pipes;
  tls_pipe client;
  tls_pipe server;
};

void handshake(net::io_context& ctx, tls_pair& p) {
  outcome c, s;
  p.client.async_handshake(ssl::stream_base::client, record(c));
  p.server.async_handshake(ssl::stream_base::server, record(s));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return c.done() && s.done(); }));
  BOOST_TEST_REQUIRE(!c.ec, c.ec.message());
  BOOST_TEST_REQUIRE(!s.ec, s.ec.message());
}

} // namespace

BOOST_AUTO_TEST_CASE(ssl_stream_over_pipe_handshake_and_300_KB_each_way) {
  net::io_context ctx;
  tls_contexts tls;
  tls_pair p(ctx, tls);
  BOOST_TEST(p.client.next_layer().partner() == &p.server.next_layer());
  BOOST_TEST(&p.client.lowest_layer() == &p.client.next_layer());
  handshake(ctx, p);
  // The client really verified the server's certificate.
  BOOST_TEST(SSL_get_verify_result(p.client.native_handle()) == X509_V_OK);
  X509* peer = SSL_get1_peer_certificate(p.client.native_handle());
  BOOST_TEST(peer != nullptr);
  X509_free(peer);

  constexpr std::size_t size = 300 * 1024;
  const auto up = pattern(size, 1), down = pattern(size, 2);
  std::vector<std::uint8_t> up_in(size), down_in(size);
  outcome cw, sw, cr, sr;
  net::async_write(p.client, net::buffer(up), record(cw));
  net::async_write(p.server, net::buffer(down), record(sw));
  net::async_read(p.server, net::buffer(up_in), record(sr));
  net::async_read(p.client, net::buffer(down_in), record(cr));
  BOOST_TEST_REQUIRE(
      run_until(ctx, [&] { return cw.done() && sw.done() && cr.done() && sr.done(); }));
  BOOST_TEST(!cw.ec, cw.ec.message());
  BOOST_TEST(!sw.ec, sw.ec.message());
  BOOST_TEST(!cr.ec, cr.ec.message());
  BOOST_TEST(!sr.ec, sr.ec.message());
  BOOST_TEST(sr.n == size);
  BOOST_TEST(cr.n == size);
  BOOST_TEST((up_in == up));
  BOOST_TEST((down_in == down));
}

// The same through a pipe with a small buffer, so that TLS records are split across many
// writes and reads, and backpressure holds records back.
BOOST_AUTO_TEST_CASE(ssl_stream_over_small_capacity_pipe) {
  net::io_context ctx;
  tls_contexts tls;
  tls_pair p(ctx, tls, {.capacity = 1000});
  handshake(ctx, p);
  constexpr std::size_t size = 100 * 1024;
  const auto up = pattern(size, 3), down = pattern(size, 4);
  std::vector<std::uint8_t> up_in(size), down_in(size);
  outcome cw, sw, cr, sr;
  net::async_write(p.client, net::buffer(up), record(cw));
  net::async_write(p.server, net::buffer(down), record(sw));
  net::async_read(p.server, net::buffer(up_in), record(sr));
  net::async_read(p.client, net::buffer(down_in), record(cr));
  BOOST_TEST_REQUIRE(
      run_until(ctx, [&] { return cw.done() && sw.done() && cr.done() && sr.done(); }));
  BOOST_TEST(!sr.ec, sr.ec.message());
  BOOST_TEST(!cr.ec, cr.ec.message());
  BOOST_TEST((up_in == up));
  BOOST_TEST((down_in == down));
}

// A client that does not trust the certificate: both handshakes fail, neither hangs.
BOOST_AUTO_TEST_CASE(untrusted_certificate_fails_both_handshakes) {
  net::io_context ctx;
  tls_contexts tls;
  ssl::context distrustful(ssl::context::tls_client);
  distrustful.set_verify_mode(ssl::verify_peer);
  auto pipes = sluice::make_pipe(ctx);
  tls_pipe client(std::move(pipes.first), distrustful);
  tls_pipe server(std::move(pipes.second), tls.server);
  outcome c, s;
  client.async_handshake(ssl::stream_base::client, record(c));
  server.async_handshake(ssl::stream_base::server, record(s));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return c.done() && s.done(); }));
  BOOST_TEST((c.ec.category() == net::error::get_ssl_category()), c.ec.message());
  BOOST_TEST(static_cast<bool>(s.ec), "the server's handshake failed too: " << s.ec.message());
}

BOOST_AUTO_TEST_CASE(clean_tls_shutdown) {
  net::io_context ctx;
  tls_contexts tls;
  tls_pair p(ctx, tls);
  handshake(ctx, p);
  const std::string msg = "before close_notify";
  outcome w;
  net::async_write(p.client, net::buffer(msg), record(w));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return w.done(); }));

  // The client shuts down; the server reads the data, then eof (close_notify), then shuts
  // down in turn; the client's shutdown completes when it sees the server's close_notify.
  outcome client_shutdown, server_read, server_shutdown;
  std::string in;
  p.client.async_shutdown([&](error_code ec) { record(client_shutdown)(ec); });
  net::async_read(p.server, net::dynamic_buffer(in), [&](error_code ec, std::size_t n) {
    record(server_read)(ec, n);
    p.server.async_shutdown([&](error_code ec2) { record(server_shutdown)(ec2); });
  });
  BOOST_TEST_REQUIRE(run_until(
      ctx, [&] { return client_shutdown.done() && server_read.done() && server_shutdown.done(); }));
  BOOST_TEST(server_read.ec == net::error::eof, server_read.ec.message());
  BOOST_TEST(in == msg);
  BOOST_TEST(!server_shutdown.ec, server_shutdown.ec.message());
  BOOST_TEST(!client_shutdown.ec, client_shutdown.ec.message());
  BOOST_TEST(
      (SSL_get_shutdown(p.client.native_handle()) == (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)));
  BOOST_TEST(
      (SSL_get_shutdown(p.server.native_handle()) == (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)));
  // Nothing was left over in the pipe, and the transport can now be closed.
  BOOST_TEST(p.client.next_layer().available() == 0u);
  BOOST_TEST(p.server.next_layer().available() == 0u);
  p.client.next_layer().close();
  BOOST_TEST(p.server.next_layer().partner() == nullptr);
}

namespace {

// One HTTP exchange: the client writes a request, the server reads it and answers, the
// client reads the answer. Works over any stream, so over a pipe and over TLS over a pipe.
template <class Stream>
void http_exchange(net::io_context& ctx, Stream& client, Stream& server) {
  const std::string body(100 * 1024, 'q'); // larger than most buffers on the way
  http::request<http::string_body> request{http::verb::post, "/echo?x=1", 11};
  request.set(http::field::host, tls_host);
  request.set(http::field::content_type, "text/plain");
  request.body() = body;
  request.prepare_payload();

  outcome wrote_request, read_request;
  boost::beast::flat_buffer server_buffer;
  http::request<http::string_body> received;
  http::async_write(client, request, record(wrote_request));
  http::async_read(server, server_buffer, received, record(read_request));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return wrote_request.done() && read_request.done(); }));
  BOOST_TEST_REQUIRE(!wrote_request.ec, wrote_request.ec.message());
  BOOST_TEST_REQUIRE(!read_request.ec, read_request.ec.message());
  BOOST_TEST((received.method() == http::verb::post));
  BOOST_TEST(received.target() == "/echo?x=1");
  BOOST_TEST(received[http::field::host] == tls_host);
  BOOST_TEST(received.body().size() == body.size());
  BOOST_TEST((received.body() == body));

  http::response<http::string_body> response{http::status::ok, 11};
  response.set(http::field::server, "sluice-test");
  response.body() = "got " + std::to_string(received.body().size()) + " bytes";
  response.prepare_payload();
  outcome wrote_response, read_response;
  boost::beast::flat_buffer client_buffer;
  http::response<http::string_body> answer;
  http::async_write(server, response, record(wrote_response));
  http::async_read(client, client_buffer, answer, record(read_response));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return wrote_response.done() && read_response.done(); }));
  BOOST_TEST(!wrote_response.ec, wrote_response.ec.message());
  BOOST_TEST(!read_response.ec, read_response.ec.message());
  BOOST_TEST((answer.result() == http::status::ok));
  BOOST_TEST(answer[http::field::server] == "sluice-test");
  BOOST_TEST(answer.body() == "got " + std::to_string(body.size()) + " bytes");
}

} // namespace

BOOST_AUTO_TEST_CASE(beast_http_over_pipe) {
  net::io_context ctx;
  auto pipes = sluice::make_pipe(ctx, {.capacity = 4096});
  http_exchange(ctx, pipes.first, pipes.second);

  // The client half-closes; the server's next read sees the end of the stream.
  pipes.first.shutdown(net::socket_base::shutdown_send);
  outcome next;
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> none;
  http::async_read(pipes.second, buffer, none, record(next));
  BOOST_TEST_REQUIRE(run_until(ctx, [&] { return next.done(); }));
  BOOST_TEST((next.ec == http::error::end_of_stream), next.ec.message());
}

BOOST_AUTO_TEST_CASE(beast_http_over_tls_over_pipe) {
  net::io_context ctx;
  tls_contexts tls;
  tls_pair p(ctx, tls, {.capacity = 4096});
  handshake(ctx, p);
  http_exchange(ctx, p.client, p.server);
}
