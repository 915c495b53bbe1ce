#pragma once

// Sends a few bytes through a sluice pipe; true when they arrived intact.
bool consumer_pipe_round_trip();
