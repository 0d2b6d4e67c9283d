// The header test links one translation unit per public header, each of which
// includes only that header (twice). Building this executable is the test;
// running it checks that it links and starts.
int main() {
    return 0;
}
