/* skeptic command line: placeholder dispatcher (filled by the CLI work). */
#include <stdio.h>
#include <string.h>

#include "skeptic/skeptic.h"

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("skeptic %s\n", SKEPTIC_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: skeptic <command> [options]\n");
    return 2;
}
