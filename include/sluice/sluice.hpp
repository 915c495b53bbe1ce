#ifndef SLUICE_SLUICE_HPP
#define SLUICE_SLUICE_HPP

// Everything but the zlib filters (<sluice/filters/zlib.hpp>), which need zlib.
#include <sluice/error.hpp>
#include <sluice/filtered_stream.hpp>
#include <sluice/flush_mode.hpp>
#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>
#include <sluice/rate_limited_stream.hpp>

#endif
