#include <sluice/filters/zlib.hpp>

#include <zlib.h>

#include <new>
#include <stdexcept>
#include <string>

namespace sluice::zlib {

namespace {

// Points a z_stream at the spans, runs one step, and advances the spans past what it used.
template <class Step>
int run(z_stream& z, std::span<const std::byte>& in, std::span<std::byte>& out, Step step) {
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), UINT32_MAX));
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size(), UINT32_MAX));
  uInt in_before = z.avail_in, out_before = z.avail_out;
  int rc = step();
  in = in.subspan(in_before - z.avail_in);
  out = out.subspan(out_before - z.avail_out);
  return rc;
}

} // namespace

struct deflate_filter::state {
  z_stream z{};
  ~state() { deflateEnd(&z); }
};

deflate_filter::deflate_filter() : deflate_filter(Z_DEFAULT_COMPRESSION) {}

deflate_filter::deflate_filter(int level) : state_(std::make_unique<state>()) {
  if (level != Z_DEFAULT_COMPRESSION && (level < 0 || level > 9))
    throw std::invalid_argument("sluice::zlib::deflate_filter: level = " + std::to_string(level) +
                                ": must be 0 to 9");
  if (deflateInit(&state_->z, level) != Z_OK)
    throw std::bad_alloc();
}

deflate_filter::deflate_filter(deflate_filter&&) noexcept = default;
deflate_filter& deflate_filter::operator=(deflate_filter&&) noexcept = default;
deflate_filter::~deflate_filter() = default;

filter_result deflate_filter::operator()(std::span<const std::byte>& in, std::span<std::byte>& out,
                                         flush_mode mode) {
  if (out.empty())
    return filter_result::need_more;
  int flush = mode == flush_mode::normal  ? Z_NO_FLUSH
              : mode == flush_mode::flush ? Z_SYNC_FLUSH
                                          : Z_FINISH;
  std::size_t in_size = in.size(), out_size = out.size();
  int rc = run(state_->z, in, out, [&] { return deflate(&state_->z, flush); });
  bool progress = in.size() != in_size || out.size() != out_size;
  if (rc == Z_STREAM_ERROR)
    return filter_result::error; // e.g. input after finished
  // Z_BUF_ERROR, or nothing moved: it has nothing more to give for now.
  return progress ? filter_result::ok : filter_result::need_more;
}

struct inflate_filter::state {
  z_stream z{};
  bool ended = false;
  ~state() { inflateEnd(&z); }
};

inflate_filter::inflate_filter() : state_(std::make_unique<state>()) {
  if (inflateInit(&state_->z) != Z_OK)
    throw std::bad_alloc();
}

inflate_filter::inflate_filter(inflate_filter&&) noexcept = default;
inflate_filter& inflate_filter::operator=(inflate_filter&&) noexcept = default;
inflate_filter::~inflate_filter() = default;

filter_result inflate_filter::operator()(std::span<const std::byte>& in, std::span<std::byte>& out,
                                         flush_mode mode) {
  state& s = *state_;
  if (s.ended) // the stream is complete: anything more is not ours to accept
    return in.empty() ? filter_result::need_more : filter_result::error;
  if (out.empty())
    return filter_result::need_more;
  std::size_t in_size = in.size(), out_size = out.size();
  int rc = run(s.z, in, out, [&] { return inflate(&s.z, Z_NO_FLUSH); });
  bool progress = in.size() != in_size || out.size() != out_size;
  switch (rc) {
  case Z_STREAM_END:
    s.ended = true;
    return progress ? filter_result::ok : filter_result::need_more;
  case Z_OK:
    break;
  case Z_BUF_ERROR:
    break; // no progress possible: more input needed
  default:
    return filter_result::error; // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR
  }
  if (progress)
    return filter_result::ok;
  // The next layer has ended and zlib still waits for its trailer: truncated.
  return mode == flush_mode::finished ? filter_result::error : filter_result::need_more;
}

} // namespace sluice::zlib
