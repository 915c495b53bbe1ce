#ifndef SLUICE_FLUSH_MODE_HPP
#define SLUICE_FLUSH_MODE_HPP

namespace sluice {

/// How far a flush goes, for pipes and filters alike (libevent's BEV_NORMAL, BEV_FLUSH and
/// BEV_FINISHED).
enum class flush_mode {
  normal,  ///< move what the usual limits allow
  flush,   ///< move everything now, past the limits
  finished ///< move everything, then end the stream
};

} // namespace sluice

#endif
