#include <cstdio>
int main() { std::puts("dspool: not built yet"); return 1; }
