// check_snippets DOC... -- SOURCE...
// Fails unless every ```cpp block of the Markdown files DOC appears, line for line, in one
// of the compiled SOURCE files (blanks around each line ignored), so that the code the
// docs show is code the build compiles. A line "// ..." in a block marks a gap: the parts
// around it are looked for separately.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::string strip(const std::string& line) {
  auto first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos)
    return {};
  return line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
}

std::vector<std::string> stripped_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(strip(line));
  return lines;
}

} // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> docs, sources;
  bool in_sources = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--")
      in_sources = true;
    else
      (in_sources ? sources : docs).push_back(arg);
  }
  std::string compiled = "\n";
  for (const auto& source : sources)
    for (const auto& line : stripped_lines(source))
      compiled += line + "\n";

  int checked = 0, missing = 0;
  for (const auto& doc : docs) {
    auto lines = stripped_lines(doc);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i] != "```cpp")
        continue;
      std::size_t start = i + 1;
      std::vector<std::string> parts{"\n"};
      for (++i; i < lines.size() && lines[i] != "```"; ++i) {
        if (lines[i] == "// ...")
          parts.emplace_back("\n");
        else
          parts.back() += lines[i] + "\n";
      }
      ++checked;
      bool found = true;
      for (const auto& part : parts)
        found = found && compiled.find(part) != std::string::npos;
      if (!found) {
        std::fprintf(stderr, "%s:%zu: this cpp block is in no compiled source\n", doc.c_str(),
                     start);
        ++missing;
      }
    }
  }
  std::printf("%d of %d cpp blocks found in compiled sources\n", checked - missing, checked);
  return checked > 0 && missing == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "check_snippets: %s\n", e.what());
  return 2;
}
