// sluice-proxy's command line: every unit, every error, and the buckets made of it.
#include <boost/test/unit_test.hpp>

#include "proxy_limits.hpp"
#include "proxy_options.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// The log lines and their queue are in proxy_log.cpp, in the same executable.

using namespace sluice::proxy;
using namespace std::chrono_literals;
using args = std::vector<std::string>;

namespace {

// True when parse_size / parse_duration reject `text` with a message that quotes it.
template <class Parse>
bool rejects(Parse parse, const std::string& text, const std::string& words = "") {
  try {
    parse(text);
  } catch (const std::invalid_argument& e) {
    BOOST_TEST_MESSAGE(text << " -> " << e.what());
    std::string what = e.what();
    return what.find(words) != std::string::npos &&
           (text.empty() || what.find("'" + text + "'") != std::string::npos);
  }
  return false;
}

// True when parse_options rejects `a` with an option_error naming `option`, the message
// starting with it.
bool rejects_option(const args& a, const std::string& option, const std::string& words = "") {
  try {
    parse_options(a);
  } catch (const option_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    std::string what = e.what();
    return e.option() == option && what.starts_with(option + ": ") &&
           what.find(words) != std::string::npos;
  }
  return false;
}

const args endpoints{"--listen", "127.0.0.1:8080", "--upstream", "127.0.0.1:8000"};

args with(std::initializer_list<std::string> more) {
  args a = endpoints;
  a.insert(a.end(), more);
  return a;
}

} // namespace

BOOST_AUTO_TEST_CASE(size_units) {
  BOOST_TEST(parse_size("0") == 0u);
  BOOST_TEST(parse_size("1234") == 1234u);
  BOOST_TEST(parse_size("1234B") == 1234u);
  BOOST_TEST(parse_size("2K") == 2000u);
  BOOST_TEST(parse_size("2KB") == 2000u);
  BOOST_TEST(parse_size("2Ki") == 2048u);
  BOOST_TEST(parse_size("256KiB") == 262144u);
  BOOST_TEST(parse_size("3M") == 3000000u);
  BOOST_TEST(parse_size("3MB") == 3000000u);
  BOOST_TEST(parse_size("3Mi") == 3u * 1024 * 1024);
  BOOST_TEST(parse_size("2MiB") == 2u * 1024 * 1024);
  BOOST_TEST(parse_size("5G") == 5000000000u);
  BOOST_TEST(parse_size("5GB") == 5000000000u);
  BOOST_TEST(parse_size("5Gi") == 5ull * 1024 * 1024 * 1024);
  BOOST_TEST(parse_size("5GiB") == 5ull * 1024 * 1024 * 1024);
  BOOST_TEST(parse_size("2T") == 2000000000000u);
  BOOST_TEST(parse_size("2TB") == 2000000000000u);
  BOOST_TEST(parse_size("2Ti") == 2ull << 40);
  BOOST_TEST(parse_size("2TiB") == 2ull << 40);
}

BOOST_AUTO_TEST_CASE(size_spellings) {
  BOOST_TEST(parse_size("256kib") == 262144u); // units ignore case
  BOOST_TEST(parse_size("256KIB") == 262144u);
  BOOST_TEST(parse_size("1kb") == 1000u);
  BOOST_TEST(parse_size("256KiB/s") == 262144u); // a rate may say so
  BOOST_TEST(parse_size("100/s") == 100u);
  BOOST_TEST(parse_size("1.5MiB") == 1572864u);   // fractions, exactly
  BOOST_TEST(parse_size("1.1GB") == 1100000000u); // where a double would give ...999
  BOOST_TEST(parse_size("0.5K") == 500u);
  BOOST_TEST(parse_size(".5K") == 500u);
  BOOST_TEST(parse_size("1.0009K") == 1000u); // rounded down to whole bytes
  BOOST_TEST(parse_size("9223372036854775807") == 9223372036854775807u); // INT64_MAX
}

BOOST_AUTO_TEST_CASE(size_errors) {
  BOOST_TEST(rejects(parse_size, "", "empty"));
  BOOST_TEST(rejects(parse_size, "KiB", "not a number"));
  BOOST_TEST(rejects(parse_size, "10XB", "unknown unit 'XB'"));
  BOOST_TEST(rejects(parse_size, "10 KiB", "unknown unit"));
  BOOST_TEST(rejects(parse_size, "10KiBs", "unknown unit"));
  BOOST_TEST(rejects(parse_size, "10Kib/m", "unknown unit"));
  BOOST_TEST(rejects(parse_size, "10P",
                     "unknown unit 'P' (B, K/KB, Ki/KiB, M/MB, Mi/MiB, G/GB, "
                     "Gi/GiB, T/TB, Ti/TiB)"));
  BOOST_TEST(rejects(parse_size, "-5", "negative"));
  BOOST_TEST(rejects(parse_size, "-5KiB", "negative"));
  BOOST_TEST(rejects(parse_size, "1.2.3K", "not a number"));
  BOOST_TEST(rejects(parse_size, ".", "not a number"));
  BOOST_TEST(rejects(parse_size, "0x10", "unknown unit"));
  BOOST_TEST(rejects(parse_size, "9223372036854775808", "too large")); // INT64_MAX + 1
  BOOST_TEST(rejects(parse_size, "9000000000GiB", "too large"));
  BOOST_TEST(rejects(parse_size, "9000000TiB", "too large"));
  BOOST_TEST(rejects(parse_size, "99999999999999999999999999", "too large"));
}

BOOST_AUTO_TEST_CASE(duration_units) {
  BOOST_TEST(parse_duration("1s").count() == 1000000000);
  BOOST_TEST(parse_duration("10ms").count() == 10000000);
  BOOST_TEST(parse_duration("250us").count() == 250000);
  BOOST_TEST(parse_duration("250\xC2\xB5s").count() == 250000); // µs
  BOOST_TEST(parse_duration("7ns").count() == 7);
  BOOST_TEST(parse_duration("1.5s").count() == 1500000000);
  BOOST_TEST(parse_duration("0.1ms").count() == 100000);
  BOOST_TEST(parse_duration("10MS").count() == 10000000);
  BOOST_TEST(parse_duration("0s").count() == 0); // parse_options decides what is too small
}

BOOST_AUTO_TEST_CASE(duration_errors) {
  BOOST_TEST(rejects(parse_duration, "", "empty"));
  // Every message lists the units that parse: the same list as the usage and the doc.
  BOOST_TEST(rejects(parse_duration, "10", "needs a unit (ns, us or \xC2\xB5s, ms, s)"));
  BOOST_TEST(rejects(parse_duration, "10m", "unknown unit 'm' (ns, us or \xC2\xB5s, ms, s)"));
  BOOST_TEST(rejects(parse_duration, "1h", "unknown unit"));
  BOOST_TEST(rejects(parse_duration, "ms", "not a number"));
  BOOST_TEST(rejects(parse_duration, "-1s", "negative"));
  BOOST_TEST(rejects(parse_duration, "1e3ms", "unknown unit"));
  BOOST_TEST(rejects(parse_duration, "99999999999s", "too large"));
}

BOOST_AUTO_TEST_CASE(host_port_parse) {
  auto e = parse_host_port("127.0.0.1:8080");
  BOOST_TEST(e.host == "127.0.0.1");
  BOOST_TEST(e.port == 8080);
  e = parse_host_port("[::1]:9");
  BOOST_TEST(e.host == "::1");
  BOOST_TEST(e.port == 9);
  BOOST_TEST(parse_host_port("0.0.0.0:0").port == 0);
  BOOST_TEST(parse_host_port("10.1.2.3:65535").port == 65535);
  // A port is a number: leading zeros change nothing, however many.
  BOOST_TEST(parse_host_port("localhost:00080").port == 80);
  BOOST_TEST(parse_host_port("localhost:000080").port == 80);
  BOOST_TEST(parse_host_port("localhost:00000000000000000000080").port == 80);
  BOOST_TEST(parse_host_port("localhost:065535").port == 65535);
  // Names are taken as they are: resolving them is the caller's I/O.
  e = parse_host_port("localhost:8000");
  BOOST_TEST(e.host == "localhost");
  BOOST_TEST(e.port == 8000);
  BOOST_TEST(parse_host_port("proxy-1.example.org:0").host == "proxy-1.example.org");
  BOOST_TEST(parse_host_port("no-such-host.invalid:80").host == "no-such-host.invalid");
  BOOST_TEST(parse_host_port("[fe80::1%lo]:80").host == "fe80::1%lo");

  // Each malformed HOST:PORT, and the words its message must have.
  static constexpr std::pair<const char*, const char*> malformed[] = {
      {"127.0.0.1", "no port"},
      {"localhost", "no port"},
      {"127.0.0.1:", "no port"},
      {"localhost:", "no port"},
      {"[::1]:", "no port"},
      {"localhost:http", "no port"},
      {"localhost:-1", "no port"},
      {"localhost:123456", "above 65535"},
      {"localhost:0000065536", "above 65535"},
      {"127.0.0.1:65536", "above 65535"},
      {"localhost:99999", "above 65535"},
      {":80", "no host"},
      {"[]:80", "no host"},
      {"::1:80", "[ADDR]:PORT"},
      {"[::1]80", "[ADDR]:PORT"},
      {"[::1", "[ADDR]:PORT"},
      {"[::1:80", "[ADDR]:PORT"},
      {"[localhost]:80", "IPv6 addresses only"},
  };
  for (auto [text, words] : malformed) {
    BOOST_TEST_INFO(text);
    BOOST_TEST(rejects(parse_host_port, text, words));
  }
}

BOOST_AUTO_TEST_CASE(host_port_text) {
  // Back to what was typed: the form of the proxy's messages.
  for (const char* text : {"127.0.0.1:8080", "[::1]:9", "localhost:0", "[fe80::1%lo]:80"})
    BOOST_TEST(parse_host_port(text).text() == text);
}

BOOST_AUTO_TEST_CASE(full_command_line) {
  auto o = parse_options({"--listen", "127.0.0.1:8080", "--upstream", "127.0.0.1:8000", "--rate",
                          "256KiB", "--total", "2MiB", "--tick", "20ms", "--stats", "1s", "--burst",
                          "64KiB", "--max-connections", "100", "--log-format", "json"});
  BOOST_TEST(!o.help);
  BOOST_TEST(!o.version);
  BOOST_TEST(o.routes[0].listen.tcp.host == "127.0.0.1");
  BOOST_TEST(o.routes[0].listen.tcp.port == 8080);
  BOOST_TEST(o.routes[0].upstream.tcp.host == "127.0.0.1");
  BOOST_TEST(o.routes[0].upstream.tcp.port == 8000);
  BOOST_TEST(o.limits.rate.down.value() == 262144u);
  BOOST_TEST(o.limits.rate.up.value() == 262144u);
  BOOST_TEST(o.limits.total.down.value() == 2097152u);
  BOOST_TEST(o.limits.total.up.value() == 2097152u);
  BOOST_TEST(o.limits.tick.count() == 20000000);
  BOOST_TEST(o.stats.value().count() == 1000000000);
  BOOST_TEST(o.limits.burst.value() == 65536u);
  BOOST_TEST(o.max_connections.value() == 100u);
  BOOST_TEST((o.log == log_format::json));
}

#ifdef SLUICE_PROXY_HAVE_REDIS
BOOST_AUTO_TEST_CASE(fleet_flags) {
  // --total-store and --total-group together, with a --total: the total is the fleet's.
  auto o = parse_options(with(
      {"--total", "1MiB", "--total-store", "unix:/run/redis.sock", "--total-group", "egress"}));
  BOOST_TEST_REQUIRE(o.fleet.has_value());
  BOOST_TEST(o.fleet->store == "unix:/run/redis.sock");
  BOOST_TEST(o.fleet->group == "egress");
  BOOST_TEST(o.fleet->lease.count() == 200); // the library's default
  BOOST_TEST((o.fleet->on_failure == store_failure::hold_then_safe));
  BOOST_TEST(o.limits.total.down.value() == 1048576u);
  BOOST_TEST(!parse_options(with({"--total", "1MiB"})).fleet);
  // One direction's total is enough; TCP stores, with the default port; the optional flags.
  o = parse_options(
      with({"--total-up", "5M", "--total-store=redis://10.0.0.5:6380", "--total-group=g",
            "--total-lease", "50ms", "--total-on-failure", "closed"}));
  BOOST_TEST(o.fleet->store == "redis://10.0.0.5:6380");
  BOOST_TEST(o.fleet->lease.count() == 50);
  BOOST_TEST((o.fleet->on_failure == store_failure::closed));
  for (const char* store : {"redis://localhost", "redis://[::1]:6379", "unix:///tmp/r.sock"})
    BOOST_TEST(parse_options(with({"--total", "1M", "--total-store", store, "--total-group", "g"}))
                   .fleet->store == store);
  for (auto [text, policy] : {std::pair{"hold_then_safe", store_failure::hold_then_safe},
                              {"hold", store_failure::hold},
                              {"closed", store_failure::closed},
                              {"open", store_failure::open}}) {
    o = parse_options(with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "g",
                            "--total-on-failure", text}));
    BOOST_TEST((o.fleet->on_failure == policy));
    BOOST_TEST(store_failure_name(policy) == std::string(text));
  }
  o = parse_options(with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "g",
                          "--total-lease", "1.5s"}));
  BOOST_TEST(o.fleet->lease.count() == 1500);

  const args fleet{"--total", "1MiB", "--total-store", "unix:/r", "--total-group", "g"};
  auto fleet_with = [&](std::initializer_list<std::string> more) {
    args a = with({});
    a.insert(a.end(), fleet.begin(), fleet.end());
    a.insert(a.end(), more);
    return a;
  };
  // Each flag needs the others.
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-group", "g"}), "--total-group",
                            "needs --total-store"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-store", "unix:/r"}), "--total-store",
                            "needs --total-group"));
  BOOST_TEST(rejects_option(with({"--total-store", "unix:/r", "--total-group", "g"}),
                            "--total-store", "needs --total, --total-down or --total-up"));
  BOOST_TEST(
      rejects_option(with({"--rate", "1M", "--total-store", "unix:/r", "--total-group", "g"}),
                     "--total-store", "needs --total"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-lease", "1s"}), "--total-lease",
                            "needs --total-store"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-on-failure", "open"}),
                            "--total-on-failure", "needs --total-store"));
  // Bad values, each named.
  BOOST_TEST(
      rejects_option(fleet_with({"--total-store", "unix:/s"}), "--total-store", "given twice"));
  BOOST_TEST(rejects_option(
      with({"--total", "1M", "--total-store", "localhost:6379", "--total-group", "g"}),
      "--total-store", "'localhost:6379': unknown scheme"));
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "http://x:1", "--total-group", "g"}),
                     "--total-store", "unknown scheme"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-store", "unix:", "--total-group", "g"}),
                            "--total-store", "no socket path"));
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "redis://h:0", "--total-group", "g"}),
                     "--total-store", "port"));
  BOOST_TEST(rejects_option(
      with({"--total", "1M", "--total-store", "redis://u:p@h:1", "--total-group", "g"}),
      "--total-store", "credentials"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-store",
                                  "unix:/" + std::string(200, 'x'), "--total-group", "g"}),
                            "--total-store", "longer than 107 bytes"));
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "a{b}"}),
                     "--total-group", "'a{b}': must have no '{', '}'"));
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "a b"}),
                     "--total-group", "spaces"));
  BOOST_TEST(rejects_option(
      with({"--total", "1M", "--total-store", "unix:/r", "--total-group", std::string(129, 'g')}),
      "--total-group", "longer than 128 bytes"));
  BOOST_TEST(rejects_option(with({"--total", "1M", "--total-store", "unix:/r", "--total-group="}),
                            "--total-group", "needs a value"));
  BOOST_TEST(rejects_option(fleet_with({"--total-lease", "5ms"}), "--total-lease",
                            "must be from 10ms to 5s"));
  BOOST_TEST(rejects_option(fleet_with({"--total-lease", "6s"}), "--total-lease", "from 10ms"));
  BOOST_TEST(rejects_option(fleet_with({"--total-lease", "200"}), "--total-lease", "needs a unit"));
  BOOST_TEST(rejects_option(fleet_with({"--total-on-failure", "fail_open"}), "--total-on-failure",
                            "must be hold_then_safe, hold, closed or open"));
  BOOST_TEST(
      rejects_option(fleet_with({"--total-on-failure", "hold-then-safe"}), "--total-on-failure"));
  // The store and the group go into JSON as they are (the log, /stats): UTF-8 only.
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "g\xff"}),
                     "--total-group", "not valid UTF-8"));
  BOOST_TEST(rejects_option(
      with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "g\xc0\xaf"}),
      "--total-group", "not valid UTF-8")); // an overlong '/'
  BOOST_TEST(rejects_option(
      with({"--total", "1M", "--total-store", "unix:/r", "--total-group", "g\xe2\x82"}),
      "--total-group", "not valid UTF-8")); // cut short
  BOOST_TEST(
      rejects_option(with({"--total", "1M", "--total-store", "unix:/r\xfe", "--total-group", "g"}),
                     "--total-store", "not valid UTF-8"));
  BOOST_TEST(parse_options(with({"--total", "1M", "--total-store", "unix:/r\xc3\xa9",
                                 "--total-group", "\xc3\xa9gress\xe2\x82\xac\xf0\x9f\x9a\x80"}))
                 .fleet->group == "\xc3\xa9gress\xe2\x82\xac\xf0\x9f\x9a\x80");
}
#else
BOOST_AUTO_TEST_CASE(fleet_flags_without_redis) {
  // A build without sluice::redis names the flag and says why.
  for (const char* flag : {"--total-store", "--total-group", "--total-lease", "--total-on-failure"})
    BOOST_TEST(
        rejects_option(with({"--total", "1M", flag, "x"}), flag, "built without Redis support"));
}
#endif

BOOST_AUTO_TEST_CASE(defaults_and_equals_form) {
  auto o = parse_options(endpoints);
  BOOST_TEST(!o.limits.rate.any());
  BOOST_TEST(!o.limits.total.any());
  BOOST_TEST(!o.stats);
  BOOST_TEST(!o.limits.burst);
  BOOST_TEST(!o.max_connections);
  BOOST_TEST((o.log == log_format::text));
  BOOST_TEST(o.limits.tick.count() == 10000000); // 10 ms
  BOOST_TEST(o.delay.count() == 0);
  BOOST_TEST(o.jitter.count() == 0);
  o = parse_options(with({"--delay", "100ms", "--jitter", "100ms"})); // jitter up to the delay
  BOOST_TEST(o.delay.count() == 100000000);
  BOOST_TEST(o.jitter.count() == 100000000);
  o = parse_options({"--listen=[::1]:0", "--upstream=127.0.0.1:1", "--rate=1M"});
  BOOST_TEST(o.routes[0].listen.tcp.host == "::1");
  BOOST_TEST(o.limits.rate.down.value() == 1000000u);
  o = parse_options({"--listen=localhost:0", "--upstream", "localhost:8000"});
  BOOST_TEST(o.routes[0].listen.tcp.host == "localhost");
  BOOST_TEST(o.routes[0].listen.tcp.port == 0);
  BOOST_TEST(o.routes[0].upstream.tcp.host == "localhost");
  BOOST_TEST(o.routes[0].upstream.tcp.port == 8000);
}

BOOST_AUTO_TEST_CASE(directions) {
  // Each direction alone; the other stays free.
  auto o = parse_options(with({"--rate-down", "1M"}));
  BOOST_TEST(o.limits.rate.down.value() == 1000000u);
  BOOST_TEST(!o.limits.rate.up);
  o = parse_options(with({"--rate-up", "2K", "--total-down", "3M"}));
  BOOST_TEST(!o.limits.rate.down);
  BOOST_TEST(o.limits.rate.up.value() == 2000u);
  BOOST_TEST(o.limits.total.down.value() == 3000000u);
  BOOST_TEST(!o.limits.total.up);
  // A direction's own flag wins over the one for both, before or after it.
  for (const args& a :
       {with({"--rate", "1K", "--rate-up", "5K"}), with({"--rate-up", "5K", "--rate", "1K"})}) {
    o = parse_options(a);
    BOOST_TEST(o.limits.rate.down.value() == 1000u);
    BOOST_TEST(o.limits.rate.up.value() == 5000u);
  }
  o = parse_options(with({"--total-down", "7K", "--total", "1K", "--total-up", "9K"}));
  BOOST_TEST(o.limits.total.down.value() == 7000u);
  BOOST_TEST(o.limits.total.up.value() == 9000u);
}

BOOST_AUTO_TEST_CASE(help_and_version_win) {
  BOOST_TEST(parse_options({"--help"}).help);
  BOOST_TEST(parse_options({"-h"}).help);
  BOOST_TEST(parse_options({"--rate", "1K", "--help", "--bogus"}).help);
  BOOST_TEST(parse_options({"--version"}).version);
  BOOST_TEST(parse_options({"--rate", "1K", "--version", "--bogus"}).version);
  BOOST_TEST(!parse_options({"--version"}).help);
  BOOST_TEST(usage().starts_with("usage: sluice-proxy --listen"));
}

BOOST_AUTO_TEST_CASE(option_errors_name_the_argument) {
  BOOST_TEST(rejects_option(with({"--bogus"}), "--bogus", "unknown option"));
  BOOST_TEST(rejects_option(with({"--bogus=1"}), "--bogus", "unknown option"));
  BOOST_TEST(rejects_option(with({"-r", "1K"}), "-r", "unknown option"));
  BOOST_TEST(rejects_option(with({"stray"}), "stray", "unexpected argument"));
  BOOST_TEST(rejects_option(with({"--help=1"}), "--help", "takes no value"));
  BOOST_TEST(rejects_option(with({"--rate"}), "--rate", "needs a value"));
  BOOST_TEST(rejects_option(with({"--rate="}), "--rate", "needs a value"));
  BOOST_TEST(rejects_option(with({"--rate", "--total", "1M"}), "--rate", "needs a value"));
  BOOST_TEST(rejects_option(with({"--rate", "10XB"}), "--rate", "unknown unit"));
  BOOST_TEST(rejects_option(with({"--rate", "0"}), "--rate", "more than 0"));
  BOOST_TEST(rejects_option(with({"--rate", "0KiB"}), "--rate", "more than 0"));
  BOOST_TEST(rejects_option(with({"--rate", "-1K"}), "--rate", "negative"));
  BOOST_TEST(rejects_option(with({"--total", "0"}), "--total", "more than 0"));
  BOOST_TEST(rejects_option(with({"--total", "1.5XiB"}), "--total", "unknown unit"));
  BOOST_TEST(rejects_option(with({"--tick", "10"}), "--tick", "needs a unit"));
  BOOST_TEST(rejects_option(with({"--tick", "0ms"}), "--tick", "at least 1ms"));
  BOOST_TEST(rejects_option(with({"--tick", "1us"}), "--tick", "at least 1ms, the smallest"));
  BOOST_TEST(rejects_option(with({"--tick", "999us"}), "--tick", "at least 1ms"));
  BOOST_TEST(rejects_option(with({"--tick", "1ms"}), "--tick") == false);
  BOOST_TEST(rejects_option(with({"--tick", "86400s"}), "--tick") == false);
  BOOST_TEST(rejects_option(with({"--tick", "86400.001s"}), "--tick", "at most 86400s (a day)"));
  BOOST_TEST(rejects_option(with({"--stats", "0s"}), "--stats", "at least 100ms"));
  BOOST_TEST(rejects_option(with({"--stats", "1ns"}), "--stats", "at least 100ms"));
  BOOST_TEST(rejects_option(with({"--stats", "99ms"}), "--stats", "at least 100ms"));
  BOOST_TEST(rejects_option(with({"--stats", "100ms"}), "--stats") == false);
  BOOST_TEST(rejects_option(with({"--stats", "1x"}), "--stats", "unknown unit"));
  BOOST_TEST(
      rejects_option({"--listen", ":80", "--upstream", "127.0.0.1:1"}, "--listen", "no host"));
  BOOST_TEST(rejects_option({"--listen", "localhost", "--upstream", "127.0.0.1:1"}, "--listen",
                            "no port"));
  BOOST_TEST(
      rejects_option({"--listen", "[::1", "--upstream", "127.0.0.1:1"}, "--listen", "[ADDR]:PORT"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:1", "--upstream", "localhost:70000"},
                            "--upstream", "above 65535"));
  BOOST_TEST(
      rejects_option({"--listen", "127.0.0.1:1", "--upstream", "[]:80"}, "--upstream", "no host"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:1", "--upstream", "localhost:0"}, "--upstream",
                            "other than 0"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:1", "--upstream", "localhost:000"},
                            "--upstream", "other than 0"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:1", "--upstream", "127.0.0.1"}, "--upstream",
                            "no port"));
  BOOST_TEST(rejects_option({"--upstream", "127.0.0.1:1"}, "--listen", "is required"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:1"}, "--upstream", "is required"));
  BOOST_TEST(rejects_option({}, "--listen", "is required"));
  BOOST_TEST(rejects_option(with({"--max-connections", "0"}), "--max-connections", "at least 1"));
  BOOST_TEST(
      rejects_option(with({"--max-connections", "1K"}), "--max-connections", "not a whole number"));
  BOOST_TEST(
      rejects_option(with({"--max-connections", "-1"}), "--max-connections", "not a whole number"));
  BOOST_TEST(
      rejects_option(with({"--max-connections", "99999999999"}), "--max-connections", "too large"));
  BOOST_TEST(rejects_option(with({"--log-format", "xml"}), "--log-format", "text or json"));
  BOOST_TEST(rejects_option(with({"--rate-down", "0"}), "--rate-down", "more than 0"));
  BOOST_TEST(rejects_option(with({"--total-up", "1Q"}), "--total-up", "unknown unit"));
  BOOST_TEST(rejects_option(with({"--burst", "0"}), "--burst", "more than 0"));
  BOOST_TEST(rejects_option(with({"--delay", "0s"}), "--delay", "more than 0"));
  BOOST_TEST(rejects_option(with({"--delay", "61s"}), "--delay", "at most 60s"));
  BOOST_TEST(rejects_option(with({"--delay", "10"}), "--delay", "needs a unit"));
  BOOST_TEST(rejects_option(with({"--jitter", "10ms"}), "--jitter", "needs --delay"));
  BOOST_TEST(rejects_option(with({"--delay", "10ms", "--jitter", "11ms"}), "--jitter",
                            "'11ms': must be at most --delay (10ms)"));
  BOOST_TEST(rejects_option(with({"--jitter", "0ms", "--delay", "1s"}), "--jitter", "more than 0"));
  BOOST_TEST(rejects_option(with({"--burst", "1K"}), "--burst", "needs a limit"));
  // Too fast for the tick: a tick's worth does not fit in a bucket. The flag named is the
  // one that set the rate.
  BOOST_TEST(
      rejects_option(with({"--rate", "200000GiB", "--tick", "86000s"}), "--rate", "too large"));
  BOOST_TEST(
      rejects_option(with({"--total", "200000GiB", "--tick", "86000s"}), "--total", "too large"));
  BOOST_TEST(rejects_option(with({"--rate", "1K", "--rate-up", "200000GiB", "--tick", "86000s"}),
                            "--rate-up", "too large"));
  BOOST_TEST(parse_options(with({"--rate", "200000GiB"})).limits.rate.down.value() ==
             214748364800000u);
  // A burst must hold a tick's worth of every rate it applies to.
  BOOST_TEST(rejects_option(with({"--rate", "1MiB", "--burst", "10000"}), "--burst",
                            "10000 bytes is less than a tick's worth of 1.0 MiB/s (10486 bytes "
                            "at --tick 10ms): raise --burst or shorten --tick (--rate)"));
  BOOST_TEST(rejects_option(with({"--rate", "1K", "--total-down", "1MiB", "--burst", "1KiB"}),
                            "--burst", "(--total-down)"));
  BOOST_TEST(rejects_option(with({"--rate", "1MiB", "--burst", "10486"}), "--burst") == false);
}

BOOST_AUTO_TEST_CASE(an_option_given_twice_is_an_error) {
  for (std::string flag :
       {"--rate", "--rate-down", "--rate-up", "--total", "--total-down", "--total-up", "--burst"}) {
    BOOST_TEST_INFO(flag);
    BOOST_TEST(rejects_option(with({flag, "1M", flag, "2M"}), flag, "is given twice"));
    BOOST_TEST(rejects_option(with({flag + "=1M", flag, "1M"}), flag, "is given twice"));
  }
  BOOST_TEST(rejects_option(with({"--tick", "10ms", "--tick=20ms"}), "--tick", "given twice"));
  BOOST_TEST(rejects_option(with({"--stats", "1s", "--stats", "1s"}), "--stats", "given twice"));
  BOOST_TEST(rejects_option(with({"--listen", "127.0.0.1:1"}), "--listen", "given twice"));
  BOOST_TEST(rejects_option(with({"--upstream", "127.0.0.1:1"}), "--upstream", "given twice"));
  BOOST_TEST(rejects_option(with({"--max-connections", "1", "--max-connections", "2"}),
                            "--max-connections", "given twice"));
  BOOST_TEST(rejects_option(with({"--log-format", "json", "--log-format", "text"}), "--log-format",
                            "given twice"));
}

BOOST_AUTO_TEST_CASE(default_burst_outlasts_late_wake_ups) {
  // 50 ms of the rate, or two ticks if that is more: a bucket a tick or two deep lost most
  // of its rate on a loaded machine, to wake-ups a few milliseconds late.
  auto b = shape_bucket(200 * 1024, 10ms); // 2048 bytes a tick, exactly
  BOOST_TEST(b.per_tick == 2048u);
  BOOST_TEST(b.tick.count() == 10000000);
  BOOST_TEST(b.burst == 10240u); // 50 ms
  b = shape_bucket(1024 * 1024, 1ms);
  BOOST_TEST(b.per_tick == 1049u); // 1048.576 bytes a tick
  BOOST_TEST(b.burst == 52428u);   // 50 ms, not the 1049 that gave a fraction of the rate
  b = shape_bucket(1000, 100ms);   // a long tick: two of them
  BOOST_TEST(b.per_tick == 100u);
  BOOST_TEST(b.burst == 200u);
  b = shape_bucket(10, 10ms); // under a byte a tick: one byte every 100 ms, two of them held
  BOOST_TEST(b.per_tick == 1u);
  BOOST_TEST(b.tick.count() == 100000000);
  BOOST_TEST(b.burst == 2u);
  // Huge rates: the default is capped at what a bucket holds; the tick's worth must fit.
  b = shape_bucket(60000ull << 30, 86000s);
  BOOST_TEST(b.burst == 9223372036854775807u);
  BOOST_TEST(b.burst >= b.per_tick);
  BOOST_CHECK_THROW(shape_bucket(200000ull << 30, 86000s), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(burst_given) {
  auto b = shape_bucket(200 * 1024, 10ms, 4096);
  BOOST_TEST(b.per_tick == 2048u);
  BOOST_TEST(b.burst == 4096u);
  BOOST_TEST(shape_bucket(200 * 1024, 10ms, 2048).burst == 2048u); // one tick: the least
  BOOST_CHECK_THROW(shape_bucket(200 * 1024, 10ms, 2047), std::invalid_argument);
  BOOST_CHECK_THROW(shape_bucket(200 * 1024, 10ms, 0), std::invalid_argument);
  BOOST_TEST(shape_bucket(200 * 1024, 10ms, 1u << 30).burst == 1u << 30); // as large as asked
}

BOOST_AUTO_TEST_CASE(buckets_limit_writes_only) {
  // Each direction is shaped where it is written, so the reads of a shaped socket are free.
  auto cfg = write_limit(shape_bucket(300 * 1024, 10ms));
  BOOST_TEST(cfg.write_rate == 3072u);
  BOOST_TEST(cfg.write_burst == 15360u);
  BOOST_TEST(cfg.tick.count() == 10000000);
  BOOST_TEST(cfg.read_rate == sluice::unlimited);
  BOOST_TEST(cfg.read_burst == sluice::unlimited);
  BOOST_CHECK_NO_THROW(cfg.validate());
}

BOOST_AUTO_TEST_CASE(bucket_rates_stay_exact) {
  // Whole bytes a tick, and the tick fitted to them: rate / tick is the rate asked for.
  auto b = shape_bucket(256 * 1024, 10ms); // 2621.44 bytes a tick
  BOOST_TEST(b.per_tick == 2621u);
  BOOST_TEST(b.tick.count() == 9998322); // 2621 / 262144 s
  b = shape_bucket(150, 10ms);           // 1.5 bytes a tick
  BOOST_TEST(b.per_tick == 2u);
  BOOST_TEST(b.tick.count() == 13333333); // 2 bytes every 13.3 ms: 150 B/s
  b = shape_bucket(40, 10ms);             // 0.4 bytes a tick: one byte every 25 ms
  BOOST_TEST(b.per_tick == 1u);
  BOOST_TEST(b.tick.count() == 25000000);
  b = shape_bucket(1, 10ms); // the slowest: one byte a second
  BOOST_TEST(b.per_tick == 1u);
  BOOST_TEST(b.tick.count() == 1000000000);
  for (std::uint64_t rate : {1000ull, 3333ull, 262144ull, 1000000ull, 123456789ull}) {
    for (auto tick : {1ms, 10ms, 100ms, 1000ms}) {
      b = shape_bucket(rate, tick);
      double achieved = static_cast<double>(b.per_tick) * 1e9 / b.tick.count();
      BOOST_TEST(std::abs(achieved - rate) / rate < 1e-6,
                 rate << " B/s at " << tick.count() << " ms: " << achieved);
    }
  }
  BOOST_CHECK_THROW(shape_bucket(0, 10ms), std::invalid_argument);
  BOOST_CHECK_THROW(shape_bucket(1000, 0ms), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(byte_formatting) {
  BOOST_TEST(format_bytes(0) == "0 B");
  BOOST_TEST(format_bytes(1023) == "1023 B");
  BOOST_TEST(format_bytes(1024) == "1.0 KiB");
  BOOST_TEST(format_bytes(204800) == "200.0 KiB");
  BOOST_TEST(format_bytes(600000) == "585.9 KiB");
  BOOST_TEST(format_bytes(2.5 * 1024 * 1024) == "2.5 MiB");
  BOOST_TEST(format_bytes(3.0 * 1024 * 1024 * 1024) == "3.0 GiB");
  BOOST_TEST(format_bytes(5.0 * 1024 * 1024 * 1024 * 1024) == "5.0 TiB");
  // What is printed parses back: every unit format_bytes uses, parse_size accepts.
  for (double bytes : {1024.0, 1.5 * (1 << 20), 3.0 * (1 << 30), 5.0 * (1ull << 40)}) {
    std::string text = format_bytes(bytes);
    text.erase(text.find(' '), 1);
    BOOST_TEST(static_cast<double>(parse_size(text)) == bytes, text);
  }
}

BOOST_AUTO_TEST_CASE(duration_formatting) {
  BOOST_TEST(format_duration(10ms) == "10ms");
  BOOST_TEST(format_duration(1500us) == "1500us");
  BOOST_TEST(format_duration(86400s) == "86400s");
  BOOST_TEST(format_duration(7ns) == "7ns");
  BOOST_TEST(format_duration(0ns) == "0ns");
  BOOST_TEST(format_duration(9998322ns) == "9998322ns");
  for (std::chrono::nanoseconds d :
       std::vector<std::chrono::nanoseconds>{10ms, 1500us, 86400s, 7ns})
    BOOST_TEST(parse_duration(format_duration(d)) == d); // what is printed parses back
}

BOOST_AUTO_TEST_CASE(per_ip) {
  auto o = parse_options(with({"--per-ip", "200KiB", "--per-ip-up", "1KiB"}));
  BOOST_TEST(o.limits.per_ip.down.value() == 204800u);
  BOOST_TEST(o.limits.per_ip.up.value() == 1024u);
  BOOST_TEST(!o.limits.per_ip_max_connections);
  o = parse_options(with({"--per-ip-down", "1M", "--per-ip-max-connections", "3"}));
  BOOST_TEST(o.limits.per_ip.down.value() == 1000000u);
  BOOST_TEST(!o.limits.per_ip.up);
  BOOST_TEST(o.limits.per_ip_max_connections.value() == 3u);
  BOOST_TEST(parse_options(with({"--per-ip", "1K", "--burst", "1K"})).limits.burst.value() ==
             1000u);
  BOOST_TEST(rejects_option(with({"--per-ip", "0"}), "--per-ip", "more than 0"));
  BOOST_TEST(rejects_option(with({"--per-ip-up", "1XB"}), "--per-ip-up", "unknown unit"));
  BOOST_TEST(rejects_option(with({"--per-ip-down"}), "--per-ip-down", "needs a value"));
  BOOST_TEST(rejects_option(with({"--per-ip", "1K", "--per-ip", "1K"}), "--per-ip", "twice"));
  BOOST_TEST(rejects_option(with({"--per-ip-max-connections", "0"}), "--per-ip-max-connections",
                            "at least 1"));
  BOOST_TEST(rejects_option(with({"--per-ip-max-connections", "1.5"}), "--per-ip-max-connections",
                            "whole number"));
  BOOST_TEST(rejects_option(with({"--per-ip", "1MiB", "--burst", "100"}), "--burst", "(--per-ip)"));
  BOOST_TEST(rejects_option(with({"--per-ip-up", "200000GiB", "--tick", "86000s"}), "--per-ip-up",
                            "too large"));
}

BOOST_AUTO_TEST_CASE(routes) {
  auto o = parse_options({"--route", "127.0.0.1:8080=localhost:80", "--route=unix:/tmp/a=unix:/x=y",
                          "--route", "[::1]:0=127.0.0.1:1", "--route", "127.0.0.1:0=unix:/u"});
  BOOST_TEST(o.routes.size() == 4u);
  BOOST_TEST(o.routes[0].listen.text() == "127.0.0.1:8080");
  BOOST_TEST(o.routes[0].upstream.tcp.host == "localhost");
  BOOST_TEST(o.routes[1].listen.unix_path == "/tmp/a"); // split at the first '='
  BOOST_TEST(o.routes[1].upstream.text() == "unix:/x=y");
  BOOST_TEST(o.routes[2].listen.tcp.host == "::1");
  BOOST_TEST(o.routes[3].upstream.unix_path == "/u");
  o = parse_options({"--listen", "unix:/run/p.sock", "--upstream", "unix:/run/u.sock"});
  BOOST_TEST(o.routes.size() == 1u);
  BOOST_TEST(o.routes[0].listen.is_unix());
  BOOST_TEST(o.routes[0].upstream.text() == "unix:/run/u.sock");
  // Two listeners on port 0 are two free ports, not one address twice.
  BOOST_TEST(
      parse_options({"--route", "127.0.0.1:0=127.0.0.1:1", "--route", "127.0.0.1:0=127.0.0.1:2"})
          .routes.size() == 2u);
  BOOST_TEST(rejects_option({"--route", "127.0.0.1:0"}, "--route", "LISTEN=UPSTREAM"));
  BOOST_TEST(rejects_option({"--route", "127.0.0.1:0=127.0.0.1:0"}, "--route", "other than 0"));
  BOOST_TEST(rejects_option({"--route", "=127.0.0.1:1"}, "--route"));
  BOOST_TEST(rejects_option({"--route", "unix:=127.0.0.1:1"}, "--route", "no path"));
  BOOST_TEST(rejects_option({"--route", "unix:/" + std::string(107, 'x') + "=127.0.0.1:1"},
                            "--route", "longer than 107"));
  BOOST_TEST(
      rejects_option({"--route", "127.0.0.1:5=127.0.0.1:1", "--route", "127.0.0.1:5=127.0.0.1:2"},
                     "--route", "another --route listens on 127.0.0.1:5"));
  BOOST_TEST(rejects_option({"--route", "unix:/a=127.0.0.1:1", "--route", "unix:/a=127.0.0.1:2"},
                            "--route", "another"));
  // --listen and --upstream are the one route's shorthand, not to be mixed with --route.
  BOOST_TEST(rejects_option({"--route", "127.0.0.1:0=127.0.0.1:1", "--listen", "127.0.0.1:0"},
                            "--listen", "cannot be mixed with --route"));
  BOOST_TEST(rejects_option({"--upstream", "127.0.0.1:1", "--route", "127.0.0.1:0=127.0.0.1:1"},
                            "--upstream", "cannot be mixed"));
  BOOST_TEST(
      rejects_option({"--listen", "unix:", "--upstream", "127.0.0.1:1"}, "--listen", "no path"));
  BOOST_TEST(rejects_option({"--listen", "127.0.0.1:0", "--upstream", "unix:"}, "--upstream"));
}

BOOST_AUTO_TEST_CASE(admin) {
  auto o = parse_options(with({"--admin", "127.0.0.1:9100"}));
  BOOST_TEST(o.admin.value().text() == "127.0.0.1:9100");
  BOOST_TEST(!o.admin_allow_remote);
  BOOST_TEST(parse_options(with({"--admin", "[::1]:0"})).admin.value().host == "::1");
  BOOST_TEST(parse_options(with({"--admin", "localhost:0"})).admin.value().host == "localhost");
  BOOST_TEST(rejects_option(with({"--admin", "0.0.0.0:9100"}), "--admin", "not a loopback"));
  BOOST_TEST(rejects_option(with({"--admin", "[::]:9100"}), "--admin", "--admin-allow-remote"));
  o = parse_options(with({"--admin", "0.0.0.0:9100", "--admin-allow-remote"}));
  BOOST_TEST(o.admin_allow_remote);
  BOOST_TEST(
      rejects_option(with({"--admin-allow-remote"}), "--admin-allow-remote", "needs --admin"));
  BOOST_TEST(rejects_option(with({"--admin-allow-remote=1"}), "--admin-allow-remote", "no value"));
  BOOST_TEST(rejects_option(with({"--admin", "9100"}), "--admin", "no port"));
  BOOST_TEST(is_loopback_host("127.1.2.3"));
  BOOST_TEST(is_loopback_host("::ffff:127.0.0.1"));
  BOOST_TEST(is_loopback_host("LocalHost"));
  BOOST_TEST(!is_loopback_host("10.0.0.1"));
  BOOST_TEST(!is_loopback_host("example.com"));
}

namespace {

// True when update_limits rejects `body` with a message starting with `key`.
bool rejects_update(const limit_set& current, const std::string& body, const std::string& key,
                    const std::string& words = "") {
  try {
    update_limits(current, body);
  } catch (const limits_error& e) {
    BOOST_TEST_MESSAGE(body << " -> " << e.what());
    std::string what = e.what();
    return what.starts_with(key) && what.find(words) != std::string::npos;
  }
  return false;
}

} // namespace

BOOST_AUTO_TEST_CASE(limits_update) {
  limit_set now = parse_options(with({"--rate-down", "1MiB", "--total", "2MiB"})).limits;
  auto next = update_limits(now, R"({"rate": "100KiB", "per_ip_up": 5000, "total_down": null})");
  BOOST_TEST(next.rate.down.value() == 102400u);
  BOOST_TEST(next.rate.up.value() == 102400u);
  BOOST_TEST(next.per_ip.up.value() == 5000u);
  BOOST_TEST(!next.per_ip.down);
  BOOST_TEST(!next.total.down);
  BOOST_TEST(next.total.up.value() == 2097152u); // not in the body: kept
  // A direction's own key wins over the key for both, in either order.
  next = update_limits(now, R"({"total_up": "1K", "total": "3K"})");
  BOOST_TEST(next.total.down.value() == 3000u);
  BOOST_TEST(next.total.up.value() == 1000u);
  next = update_limits(now, R"({"per_ip_max_connections": 4, "burst": "64KiB"})");
  BOOST_TEST(next.per_ip_max_connections.value() == 4u);
  BOOST_TEST(next.burst.value() == 65536u);
  BOOST_TEST(!update_limits(next, R"({"per_ip_max_connections": null})").per_ip_max_connections);
  BOOST_TEST((update_limits(now, "{}") == now));
  BOOST_TEST((update_limits(now, R"({"rate": null, "total": null})") == limit_set{}));

  BOOST_TEST(rejects_update(now, "", "the body is not JSON"));
  BOOST_TEST(rejects_update(now, "{", "the body is not JSON"));
  BOOST_TEST(rejects_update(now, "[1]", "the body is not a JSON object"));
  BOOST_TEST(rejects_update(now, R"({"rate": 1} x)", "the body is not JSON"));
  BOOST_TEST(rejects_update(now, R"({"bogus": 1})", "bogus: not a limit"));
  BOOST_TEST(rejects_update(now, R"({"tick": "1ms"})", "tick: not a limit"));
  BOOST_TEST(rejects_update(now, R"({"rate": 0})", "rate: must be more than 0"));
  BOOST_TEST(rejects_update(now, R"({"rate": -5})", "rate: -5 is not a whole number"));
  BOOST_TEST(rejects_update(now, R"({"rate": 1.5})", "rate: 1.5E0 is not"));
  BOOST_TEST(rejects_update(now, R"({"rate": true})", "rate: true is not"));
  BOOST_TEST(rejects_update(now, R"({"rate": [1]})", "rate:"));
  BOOST_TEST(rejects_update(now, R"({"rate_up": "1XB"})", "rate_up: '1XB': unknown unit"));
  BOOST_TEST(rejects_update(now, R"({"total": 18446744073709551615})", "total:", "too large"));
  BOOST_TEST(rejects_update(now, R"({"per_ip_max_connections": 0})", "per_ip_max_connections"));
  BOOST_TEST(rejects_update(now, R"({"per_ip_max_connections": "3"})", "per_ip_max_connections"));
  BOOST_TEST(rejects_update(now, R"({"burst": 100})", "burst:", "less than a tick's worth"));
  BOOST_TEST(rejects_update(now, R"({"per_ip_down": "200000GiB"})", "per_ip_down", "too large") ==
             false); // fits a 10 ms tick
  BOOST_TEST(rejects_update(now, std::string(max_limits_body + 1, ' '), "the body is larger"));
  // A bad key after good ones changes nothing: update_limits returns a new set or throws.
  BOOST_TEST(rejects_update(now, R"({"rate": "1K", "total": "x"})", "total:"));
}

BOOST_AUTO_TEST_CASE(limits_update_of_a_shared_total) {
  // With --total-store the total is the fleet's: a body that changes it conflicts (409), and
  // changes nothing else either; one that leaves it as it is goes through.
  limit_set now = parse_options(with({"--rate-down", "1MiB", "--total", "2MiB"})).limits;
  auto conflicts = [&](const std::string& body, const std::string& key) {
    try {
      update_limits(now, body, true);
    } catch (const limits_conflict& e) {
      BOOST_TEST_MESSAGE(body << " -> " << e.what());
      return std::string(e.what()).starts_with(key + ": the total is shared");
    } catch (const limits_error& e) {
      BOOST_TEST_MESSAGE(body << " -> " << e.what());
    }
    return false;
  };
  BOOST_TEST(conflicts(R"({"total": "1MiB"})", "total"));
  BOOST_TEST(conflicts(R"({"total_down": null})", "total_down"));
  BOOST_TEST(conflicts(R"({"rate": "1K", "total_up": 5000})", "total_up"));
  auto next = update_limits(now, R"({"rate": "1K", "total": "2MiB"})", true);
  BOOST_TEST(next.rate.down.value() == 1000u);
  BOOST_TEST((next.total == now.total));
  // The totals as GET /limits shows them, put back.
  BOOST_TEST((update_limits(now, R"({"total_down": 2097152, "total_up": "2MiB"})", true) == now));
  // A bad body is a bad body first (400, not 409).
  BOOST_TEST(rejects_update(now, R"({"total": 0})", "total: must be more than 0"));
  BOOST_TEST(!conflicts(R"({"total": 0})", "total"));
  // Without a store the total changes as before.
  BOOST_TEST(update_limits(now, R"({"total": "1MiB"})").total.down.value() == 1048576u);
}

BOOST_AUTO_TEST_CASE(limits_as_json) {
  limit_set l = parse_options(with({"--rate-down", "1K", "--per-ip-max-connections", "2"})).limits;
  BOOST_TEST(limits_json(l) ==
             R"({"rate_down":1000,"rate_up":null,"per_ip_down":null,"per_ip_up":null,)"
             R"("total_down":null,"total_up":null,"per_ip_max_connections":2,"burst":null,)"
             R"("tick_ns":10000000})");
  // What is shown can be put back as it is (tick_ns aside).
  BOOST_TEST((update_limits(limit_set{}, R"({"rate_down":1000,"per_ip_max_connections":2})") == l));
}
