#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so an install needs no build step
// and `npx warden` always runs what is checked out.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
