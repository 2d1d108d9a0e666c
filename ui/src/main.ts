import { mount } from 'svelte';
import { invoke } from '@tauri-apps/api/core';
import './app.css';
import App from './App.svelte';
import { followLanguage, startI18n } from './lib/i18n';

const target = document.getElementById('app');
if (!target) throw new Error('#app is missing from index.html');

// The language: the approver's choice, else the OS's (the `os_locales` command, src-tauri/src/locale.rs).
startI18n(() => invoke<string[]>('os_locales'));
// Notifications and the tray follow it (src-tauri/src/messages.rs).
followLanguage((language) => invoke('set_ui_language', { language }));

export default mount(App, { target });
