// Human-readable summary of a model file: what `qconvert --info` prints.
#pragma once

#include <ostream>

#include "qrun/model_file.h"

namespace qrun {

void print_model_info(const ModelFile& model, std::ostream& out, bool list_tensors = true);

}  // namespace qrun
