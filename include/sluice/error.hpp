#ifndef SLUICE_ERROR_HPP
#define SLUICE_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace sluice {

/// Errors of sluice's own making, in the "sluice" category.
enum class error {
  filter_failed = 1, ///< a filter returned filter_result::error (corrupt input, for zlib)
  filter_stalled,    ///< a filter returned ok without consuming or producing a byte, or
                     ///< needs more input than the stream buffers
};

namespace detail {
class error_category final : public boost::system::error_category {
public:
  const char* name() const noexcept override { return "sluice"; }
  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
    case error::filter_failed:
      return "filter failed (corrupt or unexpected input)";
    case error::filter_stalled:
      return "filter made no progress";
    }
    return "unknown sluice error";
  }
};
} // namespace detail

inline const boost::system::error_category& error_category() noexcept {
  static const detail::error_category category;
  return category;
}

inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace sluice

template <>
struct boost::system::is_error_code_enum<sluice::error> : std::true_type {};

#endif
