// The third-party headers that every test includes or that cost the most to parse,
// precompiled once per build (sluice_use_pch in cmake/precompiled_headers.cmake). Only
// headers that sluice's own work does not change belong here.
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
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
#include <boost/test/unit_test.hpp>
