// sluice-proxy's log lines (text and JSON, timestamped) and the queue that keeps a slow or
// vanished stdout from ever stalling the proxy. Part of test_proxy_options.
#include <boost/test/unit_test.hpp>

#include "proxy_log.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace sluice::proxy;
using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

namespace {

// 2024-05-01T12:34:56.789Z
const sys_clock::time_point may_day = sys_clock::time_point(1714566896789ms);

// An output that takes `room` bytes at most, `chunk` at a time, then would block, or is
// gone: what write_now() does with a pipe.
struct fake_output {
  std::string taken;
  std::size_t room = 1 << 20;
  std::size_t chunk = 1 << 20;
  bool gone = false;
  int calls = 0;

  std::ptrdiff_t operator()(const char* data, std::size_t size) {
    ++calls;
    if (gone)
      return log_queue::gone;
    std::size_t n = std::min({size, chunk, room - taken.size()});
    if (n == 0)
      return log_queue::would_block;
    taken.append(data, n);
    return static_cast<std::ptrdiff_t>(n);
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(proxy_log)

BOOST_AUTO_TEST_CASE(timestamps_are_iso8601_utc_to_the_millisecond) {
  BOOST_TEST(iso8601(may_day) == "2024-05-01T12:34:56.789Z");
  BOOST_TEST(iso8601(sys_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(iso8601(sys_clock::time_point(951782400000ms)) == "2000-02-29T00:00:00.000Z");
  BOOST_TEST(iso8601(sys_clock::time_point(1999ms)) == "1970-01-01T00:00:01.999Z");
  BOOST_TEST(iso8601(sys_clock::time_point(-1ms)) == "1969-12-31T23:59:59.999Z");
}

BOOST_AUTO_TEST_CASE(json_strings_are_escaped) {
  BOOST_TEST(json_quote("plain") == "\"plain\"");
  BOOST_TEST(json_quote("a \"b\" \\ c") == "\"a \\\"b\\\" \\\\ c\"");
  BOOST_TEST(json_quote("tab\tline\nret\r") == "\"tab\\tline\\nret\\r\"");
  BOOST_TEST(json_quote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  BOOST_TEST(json_quote("\xC2\xB5s") == "\"\xC2\xB5s\""); // UTF-8 as it is
  BOOST_TEST(json_quote("") == "\"\"");
}

BOOST_AUTO_TEST_CASE(text_lines_start_with_the_time) {
  BOOST_TEST(format_line(log_format::text, may_day, "closed", "closed #1 127.0.0.1:5000: up 1 B",
                         {{"id", std::uint64_t{1}}}) ==
             "2024-05-01T12:34:56.789Z closed #1 127.0.0.1:5000: up 1 B\n");
}

BOOST_AUTO_TEST_CASE(json_lines_are_one_object_each) {
  BOOST_TEST(format_line(log_format::json, may_day, "closed", "closed #1: \"x\"",
                         {{"id", std::uint64_t{1}},
                          {"peer", "127.0.0.1:5000"},
                          {"seconds", 0.25},
                          log_field::raw("each", "[{\"id\":1}]")}) ==
             "{\"time\":\"2024-05-01T12:34:56.789Z\",\"event\":\"closed\",\"message\":\"closed #1: "
             "\\\"x\\\"\",\"id\":1,\"peer\":\"127.0.0.1:5000\",\"seconds\":0.25,\"each\":[{\"id\":"
             "1}]}\n");
  BOOST_TEST(format_line(log_format::json, may_day, "sighup", "SIGHUP ignored") ==
             "{\"time\":\"2024-05-01T12:34:56.789Z\",\"event\":\"sighup\",\"message\":\"SIGHUP "
             "ignored\"}\n");
}

BOOST_AUTO_TEST_CASE(lines_go_out_at_once_when_the_output_takes_them) {
  log_queue q(1000);
  fake_output out;
  q.push("one\n");
  q.push("two\n");
  q.flush(out);
  BOOST_TEST(out.taken == "one\ntwo\n");
  BOOST_TEST(q.empty());
  BOOST_TEST(q.dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(partial_writes_resume_where_they_stopped) {
  log_queue q(1000);
  fake_output out;
  out.chunk = 3;
  q.push("hello\n");
  q.push("world\n");
  q.flush(out);
  BOOST_TEST(out.taken == "hello\nworld\n");
  BOOST_TEST(out.calls == 4);
}

BOOST_AUTO_TEST_CASE(a_blocked_output_keeps_lines_up_to_the_capacity_then_drops_them) {
  log_queue q(10);
  fake_output out;
  out.room = 0; // a pipe nobody reads
  q.push("12345\n");
  q.flush(out);
  q.push("1234\n"); // 11 bytes: no room
  q.push("123\n");  // 10: fits
  q.flush(out);
  BOOST_TEST(q.size() == 10u);
  BOOST_TEST(q.lines() == 2u);
  BOOST_TEST(q.dropped() == 1u);
  q.push("x\n");
  BOOST_TEST(q.dropped() == 2u);
  out.room = 100; // read again: what was kept goes out, in order, whole
  q.flush(out);
  BOOST_TEST(out.taken == "12345\n123\n");
  BOOST_TEST(q.empty());
  BOOST_TEST(q.dropped() == 2u);
}

BOOST_AUTO_TEST_CASE(space_freed_at_the_front_is_reused) {
  log_queue q(8);
  fake_output out;
  out.chunk = 4;
  out.room = 4;
  q.push("1234567\n");
  q.flush(out); // half taken: four bytes left
  BOOST_TEST(q.size() == 4u);
  q.push("abc\n"); // fits in what the written half left
  BOOST_TEST(q.dropped() == 0u);
  out.room = 100;
  q.flush(out);
  BOOST_TEST(out.taken == "1234567\nabc\n");
}

BOOST_AUTO_TEST_CASE(an_output_gone_drops_and_counts_everything) {
  log_queue q(1000);
  fake_output out;
  out.chunk = 2;
  out.room = 2;
  q.push("abc\n");
  q.push("def\n");
  q.flush(out); // "ab" out, then blocked
  out.gone = true;
  out.room = 100;
  q.flush(out);
  BOOST_TEST(q.output_gone());
  BOOST_TEST(q.empty());
  BOOST_TEST(q.dropped() == 2u); // the line cut in half counts
  q.push("ghi\n");
  q.flush(out);
  BOOST_TEST(q.dropped() == 3u);
  BOOST_TEST(out.taken == "ab");
}

BOOST_AUTO_TEST_SUITE_END()
