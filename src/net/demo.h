/* demo.h - `triad demo`: a local three-node cluster in the foreground. */
#ifndef TRIAD_DEMO_H
#define TRIAD_DEMO_H

int demo_main(int argc, char **argv);

#endif
