// Must not compile: an acceptor is not a stream. The compiler's first error is to name the
// requirement (test/CMakeLists.txt checks the message), not a failure deep in the adapter.
#include <sluice/rate_limited_stream.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

int main() {
  boost::asio::io_context ctx;
  sluice::rate_limited_stream<boost::asio::ip::tcp::acceptor> shaped(ctx);
}
