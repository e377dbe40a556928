"""Development tools: the Tulip simulator and the local runner. Never deployed."""
