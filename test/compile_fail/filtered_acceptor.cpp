// Must not compile: the same requirement for filtered_stream's next layer.
#include <sluice/filtered_stream.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

int main() {
  boost::asio::io_context ctx;
  sluice::filtered_stream<boost::asio::ip::tcp::acceptor, sluice::pass_through_filter,
                          sluice::pass_through_filter>
      filtered(ctx);
}
