// pipesched: every schedule renderer — text grid, Chrome trace, SVG.
#pragma once

#include "pipesched/analysis/render_chrome.hpp"
#include "pipesched/analysis/render_svg.hpp"
#include "pipesched/analysis/render_text.hpp"
