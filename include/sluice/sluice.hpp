#ifndef SLUICE_SLUICE_HPP
#define SLUICE_SLUICE_HPP

// Everything but the zlib filters (<sluice/filters/zlib.hpp>), which need zlib.
#include <sluice/flush_mode.hpp>
#include <sluice/pipe.hpp>

#endif
