// A whole text file the user named (a prompt, a chat template, a calibration text), with
// errors that name the file and what it was for.
#pragma once

#include <string>

namespace qrun {

// Throws qrun::Error naming `path` when it is a directory or cannot be opened or read;
// `what` names the file's role in the message ("prompt file": "cannot open the prompt
// file: No such file or directory").
std::string read_text_file(const std::string& path, const std::string& what);

}  // namespace qrun
