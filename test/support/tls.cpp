#include <sluice_test/tls.hpp>

#include "self_signed.hpp" // example/: the identity the TLS example uses too

namespace sluice_test {

namespace {

const sluice_example::self_signed& identity() {
  static const sluice_example::self_signed id;
  return id;
}

} // namespace

boost::asio::ssl::context server_context() {
  return identity().server_context();
}

boost::asio::ssl::context client_context() {
  return identity().client_context();
}

} // namespace sluice_test
