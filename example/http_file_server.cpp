// A small HTTP file server written with Beast, shaped by sluice. Against the unshaped
// server the diff is four places, marked "sluice:": an include, the connection's type, the
// group, and the join. Downloads then share 400 KB/s fairly, however many there are.
//
//   http_file_server                 serves a generated file to two downloads at once
//                                    on loopback and checks what arrives
//   http_file_server DIR PORT        serves DIR on 127.0.0.1:PORT until interrupted
#include <sluice/rate_limited_stream.hpp> // sluice:

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;

using connection = sluice::rate_limited_stream<tcp::socket>; // sluice: was tcp::socket

// Answers GET requests for files under `root` until the client closes.
net::awaitable<void> serve(connection stream, std::filesystem::path root) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::empty_body> request;
    auto [ec, n] =
        co_await http::async_read(stream, buffer, request, net::as_tuple(net::use_awaitable));
    if (ec)
      co_return; // the client closed, or sent nonsense
    http::response<http::file_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    if (request.target().find("..") == beast::string_view::npos) {
      auto path = root / std::string(request.target()).substr(1);
      response.body().open(path.c_str(), beast::file_mode::scan, ec);
    }
    if (ec || !response.body().is_open()) {
      http::response<http::string_body> missing(http::status::not_found, request.version());
      missing.body() = "not found\n";
      missing.prepare_payload();
      co_await http::async_write(stream, missing, net::as_tuple(net::use_awaitable));
      co_return;
    }
    response.result(http::status::ok);
    response.prepare_payload();
    auto [write_ec, m] =
        co_await http::async_write(stream, response, net::as_tuple(net::use_awaitable));
    if (write_ec || !request.keep_alive())
      co_return;
  }
}

net::awaitable<void> listen(tcp::acceptor& acceptor, std::filesystem::path root) {
  // sluice: every download in one group, 400 KB/s in all, refilled every 50 ms.
  sluice::rate_limit_group downloads(
      acceptor.get_executor(),
      {.write_rate = 20'000, .write_burst = 20'000, .tick = std::chrono::milliseconds(50)});
  for (;;) {
    connection stream(co_await acceptor.async_accept(net::use_awaitable));
    stream.join(downloads); // sluice:
    net::co_spawn(acceptor.get_executor(), serve(std::move(stream), root), net::detached);
  }
}

// Downloads `target` and returns the body, or "" on failure.
net::awaitable<std::string> download(tcp::endpoint server, std::string target) {
  tcp::socket socket(co_await net::this_coro::executor);
  co_await socket.async_connect(server, net::use_awaitable);
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.keep_alive(false);
  co_await http::async_write(socket, request, net::use_awaitable);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(socket, buffer, response, net::use_awaitable);
  co_return response.result() == http::status::ok ? response.body() : std::string();
}

int main(int argc, char** argv) {
  net::io_context ctx;
  if (argc == 3) {
    tcp::acceptor acceptor(
        ctx, {net::ip::address_v4::loopback(), static_cast<unsigned short>(std::stoi(argv[2]))});
    net::co_spawn(ctx, listen(acceptor, argv[1]), net::detached);
    net::signal_set stop(ctx, SIGINT, SIGTERM);
    stop.async_wait([&](auto, int) { ctx.stop(); });
    std::printf("serving %s on http://127.0.0.1:%u/\n", argv[1], acceptor.local_endpoint().port());
    ctx.run();
    return 0;
  }

  // Self-test: a 200 KB file, two downloads at once: 400 KB at 400 KB/s, about a second.
  auto root = std::filesystem::temp_directory_path() / "sluice_http_file_server";
  std::filesystem::create_directories(root);
  std::string content;
  for (int i = 0; content.size() < 200'000; ++i)
    content += "line " + std::to_string(i) + " of a file served at a shared rate\n";
  std::ofstream(root / "file.txt", std::ios::binary) << content;

  tcp::acceptor acceptor(ctx, {net::ip::address_v4::loopback(), 0});
  net::co_spawn(ctx, listen(acceptor, root), net::detached);
  auto start = std::chrono::steady_clock::now();
  int finished = 0, intact = 0;
  for (int i = 0; i < 2; ++i)
    net::co_spawn(
        ctx, download(acceptor.local_endpoint(), "/file.txt"),
        [&, i](std::exception_ptr e, std::string body) {
          double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          bool ok = !e && body == content;
          ++finished;
          intact += ok;
          std::printf("download %d: %s, %zu bytes in %.2f s (%.0f B/s)\n", i,
                      ok ? "intact" : "FAILED", body.size(), s,
                      static_cast<double>(body.size()) / s);
        });
  while (finished < 2 && ctx.run_one_for(std::chrono::seconds(10)) > 0) {
  }
  std::filesystem::remove_all(root);
  return intact == 2 ? 0 : 1;
}
